/**
 * The Redis of the gateway benchmark's Redis cases: the one named by
 * `--redis`, REDIS_URL or TEST_REDIS_URL (scripts/infra/up.sh), else a
 * private `redis-server` (Debian package) started on a free loopback port
 * without persistence and stopped after the run.
 */
import { spawn, spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { pidListeningOn } from "../support.js";
import { freePort } from "../../test/support/processes.js";

export interface BenchRedis {
  readonly url: string;
  /** The server's pid, when it runs on this machine and can be found (for its CPU). */
  readonly pid?: number | undefined;
  /** Where it came from, for the report. */
  readonly origin: string;
  readonly version: string;
  stop(): Promise<void>;
}

/** `choice`: a URL, "none", or undefined (environment, else a private server). */
export async function openBenchRedis(choice: string | undefined): Promise<BenchRedis | undefined> {
  if (choice === "none") return undefined;
  const url = choice || process.env.REDIS_URL || process.env.TEST_REDIS_URL;
  if (url) {
    const u = new URL(url);
    const local = ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
    return { url, pid: local ? pidListeningOn(Number(u.port || 6379)) : undefined, origin: choice ? "--redis" : "REDIS_URL/TEST_REDIS_URL", version: await versionOf(url), stop: async () => undefined };
  }
  if (spawnSync("redis-server", ["--version"]).status !== 0) return undefined;
  const port = await freePort();
  const proc = spawn("redis-server", ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--loglevel", "warning"], { stdio: "ignore" });
  const privateUrl = `redis://127.0.0.1:${port}`;
  return {
    url: privateUrl, pid: proc.pid, origin: "private redis-server", version: await versionOf(privateUrl),
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((resolve) => proc.once("exit", resolve));
    },
  };
}

/** Waits (≤ 5 s) for the server to answer; its version. */
async function versionOf(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    for (let i = 0; ; i++) {
      try {
        if (client.status !== "ready") await client.connect();
        const info = await client.info("server");
        return /redis_version:(\S+)/.exec(info)?.[1] ?? "?";
      } catch (err) {
        if (i >= 50) throw err;
        client.disconnect();
        await sleep(100);
      }
    }
  } finally {
    client.disconnect();
  }
}

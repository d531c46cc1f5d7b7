import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, stopProcess, untilAccepting } from "../../test/support/processes.js";
import { rejectionOf, timedUnavailable, untilSucceeds } from "../../test/support/rejection.js";
import { openGatewayState } from "./open.js";
import type { GatewayState } from "./port.js";
import { createRedisState } from "./redis.js";

// Outages need a server this test may kill: a redis-server of its own (the Debian package .ci/run installs).
const haveRedisServer = spawnSync("redis-server", ["--version"]).status === 0;
if (!haveRedisServer && process.env.CI !== "true") {
  process.stderr.write("\n[skip] GatewayState outages: redis-server is not installed (scripts/infra/up.sh installs it)\n");
}

/** Starts an in-memory redis-server on `port` and waits until it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--daemonize", "no"], { stdio: "ignore" });
  await untilAccepting(child, port, "redis-server", 10_000);
  return child;
}

/** One call of every method. */
const everyCall = (s: GatewayState): (() => Promise<unknown>)[] => [
  () => s.rateLimit({ key: "k", limit: 10, periodMs: 1_000 }),
  () => s.cacheGet("k"),
  () => s.cacheSet("k", Buffer.from("x"), 60_000, ["t"]),
  () => s.cacheInvalidate("t"),
  () => s.verdictGet("k"),
  () => s.verdictSet("k", "v", 60_000),
  () => s.verdictDelete(["k"]),
  () => s.ping(),
];

/** The slowest of every method's UNAVAILABLE failure, ms. */
async function slowestFailure(s: GatewayState): Promise<number> {
  let slowest = 0;
  for (const call of everyCall(s)) slowest = Math.max(slowest, await timedUnavailable(call));
  return slowest;
}

const logCapture = () => {
  const lines: string[] = [];
  return { lines, logger: pino({}, { write: (line: string) => lines.push(JSON.parse(line).msg) }) };
};

const UNAVAILABLE_LOG = "Redis unavailable; gateway state calls fail with UNAVAILABLE until it returns";

describe.skipIf(!haveRedisServer && process.env.CI !== "true")("GatewayState outages (a redis-server of its own)", () => {
  let server: ChildProcess | undefined;
  let state: GatewayState | undefined;
  afterEach(async () => {
    await state?.close();
    if (server) await stopProcess(server); // SIGKILL ends a stopped process too
    state = server = undefined;
  });

  it("fails every call with UNAVAILABLE within 1 s while Redis is killed, and works again once it is back on its port", async () => {
    const port = await freePort();
    server = await startRedis(port);
    const { lines, logger } = logCapture();
    state = await openGatewayState({ url: `redis://127.0.0.1:${port}`, logger });

    await stopProcess(server);
    expect(await slowestFailure(state)).toBeLessThan(1_000);

    server = await startRedis(port);
    expect(await untilSucceeds(() => state!.ping(), 5_000, 20)).toBeLessThan(5_000);
    for (const call of everyCall(state)) await call();
    expect((await state.rateLimit({ key: "after", limit: 2, periodMs: 60_000 })).remaining).toBe(1);
    expect(lines).toEqual(["gateway state: Redis", UNAVAILABLE_LOG, "Redis reachable again"]);
  });

  it("fails every call with UNAVAILABLE within 1 s while Redis is stalled, and works again once it resumes", async () => {
    const port = await freePort();
    server = await startRedis(port);
    const { lines, logger } = logCapture();
    state = await openGatewayState({ url: `redis://127.0.0.1:${port}`, logger });

    server.kill("SIGSTOP");
    expect(await slowestFailure(state)).toBeLessThan(1_000);
    await sleep(1_200); // past the socket timeout: the silent connection is dropped and redialled
    expect(await slowestFailure(state)).toBeLessThan(1_000);

    server.kill("SIGCONT");
    expect(await untilSucceeds(() => state!.ping(), 5_000, 20)).toBeLessThan(5_000);
    for (const call of everyCall(state)) await call();
    expect(lines).toEqual(["gateway state: Redis", UNAVAILABLE_LOG, "Redis reachable again"]);
  });

  it("fails promptly when Redis is down at first use, and works once it comes up", async () => {
    const port = await freePort();
    state = createRedisState(`redis://127.0.0.1:${port}`);
    expect(await slowestFailure(state)).toBeLessThan(1_000);

    server = await startRedis(port);
    expect(await untilSucceeds(() => state!.ping(), 5_000, 20)).toBeLessThan(5_000);
    expect((await state.rateLimit({ key: "late", limit: 2, periodMs: 60_000 })).allowed).toBe(true);
  });

  it("fails every call with UNAVAILABLE within 1 s when the server accepts but never answers", async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      state = createRedisState(`redis://127.0.0.1:${port}`);
      expect(await slowestFailure(state)).toBeLessThan(1_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("openGatewayState refuses to start with UNAVAILABLE naming the server, without its credentials", async () => {
    const port = await freePort();
    const started = performance.now();
    const err = await rejectionOf(openGatewayState({ url: `redis://user:secret@127.0.0.1:${port}/0` }));
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toContain(`127.0.0.1:${port}`);
    expect(err.rawMessage).not.toContain("secret");
  });
});

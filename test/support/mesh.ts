import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, stopProcess, untilAccepting } from "./processes.js";

const root = join(import.meta.dirname, "..", "..");

/** The processes of the mesh, in start order: the four services, then the gateway in front of them. */
export type MeshProcessName = "auth" | "project" | "logging" | "analytics" | "gateway";

/** One process of a mesh a test started. */
export interface MeshProcess {
  readonly name: MeshProcessName;
  readonly child: ChildProcess;
  /** Every JSON log line the process wrote to stdout. */
  readonly lines: Record<string, unknown>[];
}

/** What startMesh starts. Every field is optional. */
export interface MeshOptions {
  /** Environment for every process, over the defaults (NODE_ENV=test, LOG_LEVEL=warn, loopback addresses). */
  readonly env?: Record<string, string>;
  /** Environment of one process, over `env` (e.g. `{ auth: { DATABASE_URL } }` for a real PostgreSQL). */
  readonly processEnv?: Partial<Record<MeshProcessName, Record<string, string>>>;
  /** Bound on each process's start and on the mesh becoming healthy; default 60 s. */
  readonly startTimeoutMs?: number;
}

/** A running mesh: every process on a free loopback port. */
export interface Mesh {
  /** `127.0.0.1:<port>` of the gateway's listener (REST/JSON, gRPC, gRPC-Web and Connect). */
  readonly gatewayAddress: string;
  /** `http://127.0.0.1:<port>` of the same listener. */
  readonly gatewayUrl: string;
  /** The port of each process (`admin`: the gateway's admin listener). */
  readonly ports: Readonly<Record<MeshProcessName | "admin", number>>;
  readonly processes: ReadonlyMap<MeshProcessName, MeshProcess>;
  /** Kills every process (SIGKILL) and removes the embedded stores' data. Safe to call twice. */
  stop(): Promise<void>;
}

const entries: Readonly<Record<MeshProcessName, string>> = {
  auth: "services/auth/main.ts",
  project: "services/project/main.ts",
  logging: "services/logging/main.ts",
  analytics: "services/analytics/main.ts",
  gateway: "gateway/main.ts",
};

/**
 * Starts the whole mesh as it runs in production, one process per service plus the gateway, each on a free
 * loopback port, and resolves once the gateway's `/health` answers 200. Stores are the embedded ones (PGlite
 * under a fresh temporary DATA_DIR, in-process documents and gateway state) unless `options` set their URLs.
 * Throws, after stopping what it started, if a process does not come up.
 */
export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const [auth, project, logging, analytics, gateway, admin] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort())) as
    [number, number, number, number, number, number];
  const ports = { auth, project, logging, analytics, gateway, admin };
  const dataDir = await mkdtemp(join(tmpdir(), "mesh-"));
  const common = {
    NODE_ENV: "test", LOG_LEVEL: "warn", HOST: "127.0.0.1", DATA_DIR: dataDir,
    AUTH_ADDRESS: `127.0.0.1:${auth}`, PROJECT_ADDRESS: `127.0.0.1:${project}`, LOGGING_ADDRESS: `127.0.0.1:${logging}`,
    ...options.env,
  };
  const own: Record<MeshProcessName, Record<string, string>> = {
    auth: { AUTH_PORT: String(auth) },
    project: { PROJECT_PORT: String(project) },
    logging: { LOGGING_PORT: String(logging) },
    analytics: { ANALYTICS_PORT: String(analytics) },
    gateway: {
      GATEWAY_PORT: String(gateway), GATEWAY_ADMIN_PORT: String(admin),
      UPSTREAM_AUTH: `127.0.0.1:${auth}`, UPSTREAM_PROJECT: `127.0.0.1:${project}`,
      UPSTREAM_LOGGING: `127.0.0.1:${logging}`, UPSTREAM_ANALYTICS: `127.0.0.1:${analytics}`,
    },
  };
  const processes = new Map<MeshProcessName, MeshProcess>();
  const stop = async () => {
    await Promise.all([...processes.values()].map((p) => stopProcess(p.child)));
    await rm(dataDir, { recursive: true, force: true });
  };
  const start = (name: MeshProcessName) => {
    processes.set(name, startMeshProcess(name, { ...common, ...own[name], ...options.processEnv?.[name] }));
    return untilAccepting(processes.get(name)!.child, ports[name], name, timeoutMs);
  };
  const gatewayUrl = `http://127.0.0.1:${gateway}`;
  try {
    await Promise.all((["auth", "project", "logging", "analytics"] as const).map(start));
    await start("gateway");
    await untilHealthy(gatewayUrl, timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  return { gatewayAddress: `127.0.0.1:${gateway}`, gatewayUrl, ports, processes, stop };
}

/** Starts one process of the mesh with exactly `env` (plus PATH and HOME), collecting its JSON log lines. */
export function startMeshProcess(name: MeshProcessName, env: Record<string, string>): MeshProcess {
  // node with tsx's loader, not the tsx wrapper, which would run the process in a child of its own.
  const child = spawn(process.execPath, ["--import", "tsx", entries[name]], {
    cwd: root, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let pending = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    const parts = (pending + chunk.toString()).split("\n");
    pending = parts.pop() ?? "";
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`[${name}] ${chunk.toString()}`));
  return { name, child, lines };
}

/** Polls the gateway's `/health` (every process of the mesh reachable) until it answers 200. */
async function untilHealthy(gatewayUrl: string, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ;) {
    const status = await fetch(`${gatewayUrl}/health`).then(async (r) => (await r.body?.cancel(), r.status), () => 0);
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`the mesh did not become healthy within ${timeoutMs} ms (last /health: ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

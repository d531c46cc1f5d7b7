import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { identityHeaders } from "../../lib/identity.js";
import { createLogger } from "../../lib/logger.js";
import { startProjectService } from "../../services/project/app.js";
import { loadProjectConfig, type ProjectConfig } from "../../services/project/config.js";
import { uniqueSchema } from "./integration.js";
import { dropSchema } from "./relational.js";

/** One running instance of the project service and a generated client talking to it over gRPC. */
export interface ProjectInstance {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly client: Client<typeof ProjectService>;
  /** Closes the client channel and stops the instance (idempotent). */
  stop(): Promise<void>;
}

export interface ProjectHarness extends ProjectInstance {
  /** True when the service runs on the PostgreSQL at `databaseUrl` (replicas share it). */
  readonly sharedDatabase: boolean;
  /**
   * Starts another instance of the service on the same database, as a second
   * replica behind a load balancer would run. PostgreSQL only: an embedded
   * PGlite belongs to one process, so there is nothing to share.
   */
  startReplica(): Promise<ProjectInstance>;
  /** Stops every replica, then this instance; removes the data dir and drops the schema. */
  stop(): Promise<void>;
}

/** How often the harness's instances write noted API-key uses (the service's default is seconds). */
export const USAGE_FLUSH_MS = 50;

/**
 * Starts the real project service on a loopback port (embedded PGlite under a
 * temporary DATA_DIR, or the PostgreSQL at `databaseUrl` in a fresh schema)
 * with a generated client talking to it over gRPC.
 */
export async function startProjectHarness(opts: { databaseUrl?: string } = {}): Promise<ProjectHarness> {
  const dataDir = await mkdtemp(join(tmpdir(), "mesh-project-"));
  const schema = opts.databaseUrl ? uniqueSchema("project_e2e") : undefined;
  const config = loadProjectConfig({
    PROJECT_PORT: "0", DATA_DIR: dataDir, DATABASE_URL: opts.databaseUrl, DATABASE_SCHEMA: schema, LOG_LEVEL: "silent",
  });
  const replicas: ProjectInstance[] = [];
  let main: ProjectInstance;
  try {
    main = await startInstance(config);
  } catch (err) {
    await cleanUp(dataDir, opts.databaseUrl, schema);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    address: main.address,
    client: main.client,
    sharedDatabase: opts.databaseUrl !== undefined,
    async startReplica() {
      if (!opts.databaseUrl) throw new Error("replicas share a database only on PostgreSQL (start the harness with databaseUrl)");
      const replica = await startInstance(config);
      replicas.push(replica);
      return replica;
    },
    stop() {
      stopped ??= (async () => {
        await Promise.all(replicas.map((r) => r.stop()));
        await main.stop();
        await cleanUp(dataDir, opts.databaseUrl, schema);
      })();
      return stopped;
    },
  };
}

async function startInstance(config: ProjectConfig): Promise<ProjectInstance> {
  const service = await startProjectService(config, createLogger({ service: "project", level: "silent" }), {
    usageFlushMs: USAGE_FLUSH_MS,
  });
  const address = `127.0.0.1:${service.port}`;
  const transport = createGrpcTransport({ address });
  let stopped: Promise<void> | undefined;
  return {
    address,
    client: createClient(ProjectService, transport),
    stop() {
      stopped ??= (async () => {
        transport.close();
        await service.stop();
      })();
      return stopped;
    },
  };
}

async function cleanUp(dataDir: string, databaseUrl: string | undefined, schema: string | undefined): Promise<void> {
  await rm(dataDir, { recursive: true, force: true });
  if (databaseUrl && schema) await dropSchema(databaseUrl, schema);
}

/** Call options carrying the identity metadata the gateway would forward for this user. */
export function as(userId: string, roles: readonly string[] = ["user"]): { headers: Record<string, string> } {
  return { headers: identityHeaders({ userId, roles }) };
}

/** A message of a server stream and when it arrived (`performance.now()`). */
export interface Received<T> {
  readonly message: T;
  readonly at: number;
}

/** A server stream read in the background, so a test can wait (bounded) for what it expects. */
export interface StreamRecorder<T> {
  /** Every message so far, in arrival order. */
  readonly received: readonly Received<T>[];
  /**
   * The first message at index `from` or later matching `match`, waiting at
   * most `timeoutMs`; rejects on timeout or when the stream ends first.
   */
  waitFor(match: (m: T) => boolean, opts?: { timeoutMs?: number; from?: number; what?: string }): Promise<Received<T>>;
  /** Waits (bounded) until at least `n` messages arrived. */
  waitForCount(n: number, timeoutMs?: number): Promise<readonly Received<T>[]>;
  /** True once the stream has ended (closed, failed or completed). */
  readonly done: boolean;
  /** Waits (bounded) until the stream ends; answers the error that ended it, undefined when it completed. */
  ended(timeoutMs?: number): Promise<unknown>;
  /** Aborts the call (the client disconnects) and waits (bounded) until the reader has stopped. */
  close(): Promise<void>;
}

/**
 * Opens a server stream with `open(signal)` and records its messages as they
 * arrive. `close` aborts the call; errors after that are expected and ignored.
 */
export function recordStream<T>(open: (signal: AbortSignal) => AsyncIterable<T>): StreamRecorder<T> {
  const ctrl = new AbortController();
  const received: Received<T>[] = [];
  let ended: { error: unknown } | undefined;
  let wake: (() => void)[] = [];
  const notify = () => {
    const woken = wake;
    wake = [];
    for (const w of woken) w();
  };
  const reader = (async () => {
    try {
      for await (const message of open(ctrl.signal)) {
        received.push({ message, at: performance.now() });
        notify();
      }
      ended = { error: undefined };
    } catch (error) {
      ended = { error };
    }
    notify();
  })();

  async function until<R>(check: () => R | undefined, timeoutMs: number, what: string): Promise<R> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = check();
      if (found !== undefined) return found;
      if (ended) {
        const why = ended.error === undefined ? "the stream ended" : `the stream failed: ${String(ended.error)}`;
        throw new Error(`${why} before ${what} (${received.length} messages received)`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms (${received.length} messages received)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  return {
    received,
    waitFor(match, opts = {}) {
      const from = opts.from ?? 0;
      return until(() => received.slice(from).find((r) => match(r.message)), opts.timeoutMs ?? 5_000, opts.what ?? "matching message");
    },
    waitForCount(n, timeoutMs = 5_000) {
      return until(() => (received.length >= n ? received.slice() : undefined), timeoutMs, `${n} messages`);
    },
    get done() {
      return ended !== undefined;
    },
    async ended(timeoutMs = 5_000) {
      await until(() => (ended ? true : undefined), timeoutMs, "the end of the stream").catch((err: unknown) => {
        if (!ended) throw err;
      });
      return ended!.error;
    },
    async close() {
      ctrl.abort();
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the stream did not stop within 5 s of being aborted")), 5_000);
      });
      try {
        await Promise.race([reader, stuck]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type DescMessage, type DescMethodServerStreaming, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createClient, type Client } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { LoggingService, type LogRecordSchema } from "../../gen/mesh/logging/v1/logging_pb.js";
import { deserializer, serializer } from "../../lib/grpc/server.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { identityHeaders } from "../../lib/identity.js";
import { createLogger } from "../../lib/logger.js";
import type { ProjectDirectory } from "../../lib/project-directory.js";
import type { LogEntry } from "../../lib/request-log.js";
import type { DocumentDb } from "../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../lib/stores/embedded-documents.js";
import { startAnalyticsService } from "../../services/analytics/app.js";
import { loadAnalyticsConfig } from "../../services/analytics/config.js";
import { startLoggingService } from "../../services/logging/app.js";
import { loadLoggingConfig } from "../../services/logging/config.js";
import { uniqueSchema } from "./integration.js";
import { freePort } from "./processes.js";

// ---------------------------------------------------------------------------
// Fixtures shared by the analytics unit tests and the e2e suite
// ---------------------------------------------------------------------------

/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same
 * sequence of floats in [0, 1) on every run, so "random" data sets are fixed.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A standard normal draw from two uniform draws (Box–Muller). */
export function normal(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) never happens
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** The ⌈p·n⌉-th smallest of `sorted` (ascending): the exact nearest-rank percentile. */
export function nearestRank(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

/** A stored request record as the logging service hands it to analytics; every field overridable. */
export function makeLogEntry(overrides: Partial<LogEntry> = {}): LogEntry {
  const timestamp = overrides.timestamp ?? new Date("2026-03-10T12:00:30Z");
  return {
    requestId: randomUUID(), traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", timestamp,
    method: "GET", path: "/api/v1/projects/42", route: "/api/v1/projects/{id}", statusCode: 200, latency: 10,
    ip: "127.0.0.1", userAgent: "test", userId: "", projectId: "p1", apiKeyId: "", cacheStatus: "", rateLimited: false,
    upstreamService: "project", bytesIn: 0, bytesOut: 0, errorCode: "", ingestedAt: timestamp, ...overrides,
  };
}

// ---------------------------------------------------------------------------
// The e2e harness: a logging service and analytics replicas on loopback ports
// ---------------------------------------------------------------------------

export type LogRecordInit = MessageInitShape<typeof LogRecordSchema>;

/** One running analytics instance and a generated client talking to it over gRPC. */
export interface AnalyticsInstance {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly client: Client<typeof AnalyticsService>;
  /** Closes the client channel and stops the instance (idempotent). */
  stop(): Promise<void>;
}

export interface AnalyticsHarness {
  /** The logging service the analytics instances read records from. */
  readonly logging: { readonly address: string; readonly client: Client<typeof LoggingService> };
  /** The first analytics instance (also the `analytics` health target). */
  readonly analytics: AnalyticsInstance;
  /** Every analytics instance, the first included, all on one database. */
  readonly replicas: readonly AnalyticsInstance[];
  /** Ingests records through the logging service's IngestLogBatch (as an admin, 1000 per batch). */
  ingest(records: readonly LogRecordInit[]): Promise<void>;
  /** Stops every analytics instance, then logging; drops the databases it created. */
  stop(): Promise<void>;
}

export interface AnalyticsHarnessOptions {
  /** A MongoDB (FerretDB) URL; unset runs both services on embedded stores. */
  readonly mongoUrl?: string | undefined;
  /** Which projects each user owns (the ProjectDirectory fake both services use). */
  readonly owned: Readonly<Record<string, readonly string[]>>;
  /** Analytics instances to run on one database; default 1. */
  readonly replicas?: number;
}

/** Periods short enough for tests to see rollups, evaluations and health checks within seconds. */
export const ROLLUP_INTERVAL_MS = 100;
export const ALERT_INTERVAL_MS = 200;
export const HEALTH_INTERVAL_MS = 200;

const admin = { headers: identityHeaders({ userId: "harness-admin", roles: ["user", "admin"] }) };

/**
 * Starts a logging service and `replicas` analytics instances on loopback
 * ports. They share nothing but the logging gRPC address: analytics reads
 * records only through ReadLogs. With `mongoUrl`, logging and analytics each
 * get a database of their own on the server (the analytics replicas share
 * theirs); without, logging runs on an embedded store and the analytics
 * replicas share one embedded store (passed in, as one database).
 */
export async function startAnalyticsHarness(opts: AnalyticsHarnessOptions): Promise<AnalyticsHarness> {
  const directory: ProjectDirectory = { projectIdsOf: async (userId) => opts.owned[userId] ?? [] };
  const quiet = (service: string) => createLogger({ service, level: "silent" });
  const loggingDb = opts.mongoUrl ? uniqueSchema("logging_e2e") : undefined;
  const analyticsDb = opts.mongoUrl ? uniqueSchema("analytics_e2e") : undefined;
  const sharedEmbedded: DocumentDb | undefined = opts.mongoUrl || (opts.replicas ?? 1) === 1 ? undefined : createEmbeddedDocumentDb();
  const started: { stop(): Promise<void> }[] = [];
  const cleanUp = async () => {
    for (const s of started.reverse()) await s.stop();
    await sharedEmbedded?.close();
    if (opts.mongoUrl) await dropDatabases(opts.mongoUrl, [loggingDb!, analyticsDb!]);
  };

  try {
    const loggingService = await startLoggingService(loadLoggingConfig({
      LOGGING_PORT: "0", MONGO_URL: opts.mongoUrl, MONGO_DB: loggingDb, LOG_LEVEL: "silent", SHUTDOWN_DRAIN_MS: "200",
    }), quiet("logging"), { directory });
    const loggingAddress = `127.0.0.1:${loggingService.port}`;
    const loggingTransport = createGrpcTransport({ address: loggingAddress });
    started.push({ stop: async () => { loggingTransport.close(); await loggingService.stop(); } });

    const firstPort = await freePort();
    const healthTargets = `logging=${loggingAddress},analytics=127.0.0.1:${firstPort}`;
    const replicas: AnalyticsInstance[] = [];
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      const config = loadAnalyticsConfig({
        ANALYTICS_PORT: String(i === 0 ? firstPort : 0), MONGO_URL: opts.mongoUrl, MONGO_DB: analyticsDb,
        LOGGING_ADDRESS: loggingAddress, ROLLUP_INTERVAL_MS: String(ROLLUP_INTERVAL_MS), ALERT_INTERVAL_MS: String(ALERT_INTERVAL_MS),
        HEALTH_TARGETS: healthTargets, HEALTH_INTERVAL_MS: String(HEALTH_INTERVAL_MS), LOG_LEVEL: "silent", SHUTDOWN_DRAIN_MS: "200",
      });
      const service = await startAnalyticsService(config, quiet("analytics"), { directory, ...(sharedEmbedded ? { db: sharedEmbedded } : {}) });
      const address = `127.0.0.1:${service.port}`;
      const transport = createGrpcTransport({ address });
      let stopped: Promise<void> | undefined;
      const instance: AnalyticsInstance = {
        address,
        client: createClient(AnalyticsService, transport),
        stop() {
          stopped ??= (async () => {
            transport.close();
            await service.stop();
          })();
          return stopped;
        },
      };
      started.push(instance);
      replicas.push(instance);
    }

    const loggingClient = createClient(LoggingService, loggingTransport);
    let stopped: Promise<void> | undefined;
    return {
      logging: { address: loggingAddress, client: loggingClient },
      analytics: replicas[0]!,
      replicas,
      async ingest(records) {
        for (let i = 0; i < records.length; i += 1000) {
          const batch = records.slice(i, i + 1000);
          const res = await loggingClient.ingestLogBatch({ logs: [...batch] }, admin);
          if (res.errors.length > 0 || res.ingested !== batch.length) {
            throw new Error(`ingest refused: ${res.ingested} of ${batch.length} ingested; ${JSON.stringify(res.errors.slice(0, 3))}`);
          }
        }
      },
      stop() {
        stopped ??= cleanUp();
        return stopped;
      },
    };
  } catch (err) {
    await cleanUp().catch(() => undefined);
    throw err;
  }
}

/** Drops the harness's databases, bounded: one the server has wedged stays behind (with a note) rather than hanging the suite. */
async function dropDatabases(url: string, names: readonly string[]): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000, socketTimeoutMS: 5_000 });
  try {
    for (const name of names) {
      await client.db(name).dropDatabase().catch((err: unknown) => {
        process.stderr.write(`could not drop test database ${name}: ${String(err)}\n`);
      });
    }
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * Calls `probe` every `intervalMs` until it answers something other than
 * undefined, and answers that; fails after `timeoutMs` with `what` and the
 * last answer or error, so a wait never hangs.
 */
export async function eventually<T>(probe: () => Promise<T | undefined>, opts: { timeoutMs?: number; intervalMs?: number; what: string }): Promise<T> {
  const deadline = performance.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const found = await probe();
      if (found !== undefined) return found;
      last = "nothing yet";
    } catch (err) {
      last = err;
    }
    if (performance.now() >= deadline) throw new Error(`${opts.what} did not happen within ${opts.timeoutMs ?? 15_000} ms (last: ${String(last)})`);
    await sleep(opts.intervalMs ?? 100);
  }
}

/**
 * One server-streaming call made with a plain grpc-js client (no mesh
 * transport in between): the messages received and the final status, the
 * call cancelled after `timeoutMs` (status CANCELLED then).
 */
export async function rawServerStream<I extends DescMessage, O extends DescMessage>(
  address: string, method: DescMethodServerStreaming<I, O>, request: MessageInitShape<I>, headers: Record<string, string> = {}, timeoutMs = 5_000,
): Promise<{ messages: unknown[]; code: grpc.status; details: string }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  try {
    return await new Promise((resolve) => {
      const messages: unknown[] = [];
      const call = client.makeServerStreamRequest(`/${method.parent.typeName}/${method.name}`, serializer(method.input),
        deserializer(method.output), create(method.input, request), metadata);
      const timer = setTimeout(() => call.cancel(), timeoutMs);
      call.on("data", (m: unknown) => messages.push(m));
      call.on("error", () => undefined); // the status below carries it
      call.on("status", (s: grpc.StatusObject) => {
        clearTimeout(timer);
        resolve({ messages, code: s.code, details: s.details });
      });
    });
  } finally {
    client.close();
  }
}

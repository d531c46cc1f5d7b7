import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { LoggingService, LogRecordSchema, type LogRecord } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { identityHeaders, type Caller } from "../../lib/identity.js";
import { createLogger } from "../../lib/logger.js";
import type { ProjectDirectory } from "../../lib/project-directory.js";
import type { DocumentDb } from "../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../lib/stores/embedded-documents.js";
import { startLoggingService } from "../../services/logging/app.js";
import { freePort, haveFerretdb, startFerretdb, stopProcess } from "./processes.js";
import { loadLoggingConfig, type LoggingConfig } from "../../services/logging/config.js";
import type { LogInput } from "../../services/logging/domain/records.js";
import { uniqueSchema } from "./integration.js";

// ---------------------------------------------------------------------------
// Fixtures shared by the logging domain tests and the e2e suite.

/** A valid record as the domain takes it, every field set; a unique request id unless overridden. */
export function makeLogInput(overrides: Partial<LogInput> = {}): LogInput {
  return {
    requestId: `req-${randomUUID()}`, traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7",
    timestamp: undefined, method: "GET", path: "/api/v1/projects/p1", route: "/api/v1/projects/{id}", statusCode: 200,
    latency: 12.5, ip: "203.0.113.7", userAgent: "curl/8.5.0", userId: "", projectId: "", apiKeyId: "",
    cacheStatus: "MISS", rateLimited: false, upstreamService: "project", bytesIn: 10, bytesOut: 20, errorCode: "",
    ...overrides,
  };
}

/** The same record in its wire form (timestamp as a Timestamp), for clients of the real service. */
export function makeLogRecord(overrides: Partial<LogInput> = {}): LogRecord {
  const { timestamp, ...rest } = makeLogInput(overrides);
  return create(LogRecordSchema, { ...rest, timestamp: timestamp ? timestampFromDate(timestamp) : undefined });
}

export type LogRecordInit = MessageInitShape<typeof LogRecordSchema>;

/** The project service's answer to "which projects does this user own", as a settable map (a test double). */
export interface FakeDirectory extends ProjectDirectory {
  /** Makes `userId` the owner of `projectIds` (in addition to what they own). */
  grant(userId: string, ...projectIds: string[]): void;
}

export function createFakeDirectory(owners: Record<string, readonly string[]> = {}): FakeDirectory {
  const map = new Map<string, string[]>(Object.entries(owners).map(([u, ps]) => [u, [...ps]]));
  return {
    async projectIdsOf(userId) {
      return [...(map.get(userId) ?? [])];
    },
    grant(userId, ...projectIds) {
      map.set(userId, [...(map.get(userId) ?? []), ...projectIds]);
    },
  };
}

/** Callers as the domain sees them. */
export const callers = {
  admin: (userId = "admin-1"): Caller => ({ userId, roles: ["admin"], isAdmin: true }),
  user: (userId: string): Caller => ({ userId, roles: ["user"], isAdmin: false }),
  apiKey: (projectId: string, apiKeyId = `key-${projectId}`, ownerId = "key-owner"): Caller =>
    ({ userId: ownerId, roles: ["user"], isAdmin: false, projectId, apiKeyId }),
};

/** Call options carrying the identity metadata the gateway would forward. */
export const as = {
  admin: (userId = "admin-1") => ({ headers: identityHeaders({ userId, roles: ["admin"] }) }),
  user: (userId: string) => ({ headers: identityHeaders({ userId }) }),
  apiKey: (projectId: string, apiKeyId = `key-${projectId}`, ownerId = "key-owner") =>
    ({ headers: identityHeaders({ userId: ownerId, projectId, apiKeyId }) }),
};

// ---------------------------------------------------------------------------
// The real service over gRPC.

/** One running instance of the logging service and a generated client talking to it over gRPC. */
export interface LoggingInstance {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly client: Client<typeof LoggingService>;
  /** Closes the client channel and stops the instance (idempotent). */
  stop(): Promise<void>;
}

export interface LoggingHarness extends LoggingInstance {
  /** Who owns which project, as every instance of this harness sees it. */
  readonly directory: FakeDirectory;
  /** The services' clock (wall clock plus what `advance` added). */
  now(): Date;
  /** Moves the clock of every instance forward. */
  advance(ms: number): void;
  /**
   * Starts another instance on the same database, as a second replica would
   * run: the MongoDB database, or (embedded) the same in-process store.
   */
  startReplica(): Promise<LoggingInstance>;
  /** Stops every replica, then this instance; drops the MongoDB database. */
  stop(): Promise<void>;
}

export interface LoggingHarnessOptions {
  /** A `mongodb://` URL: the services use a fresh database there (dropped on stop). Unset: one embedded store. */
  readonly mongoUrl?: string;
  /** Extra environment for the config (strings, as in the environment). */
  readonly env?: Record<string, string>;
}

/**
 * Starts the real logging service on a loopback port with a fake project
 * directory and a settable clock: on the MongoDB at `mongoUrl` in a database
 * of its own, or on an embedded store that its replicas share.
 */
export async function startLoggingHarness(opts: LoggingHarnessOptions = {}): Promise<LoggingHarness> {
  const dbName = opts.mongoUrl ? uniqueSchema("logging_e2e") : "mesh";
  const config = loadLoggingConfig({
    LOGGING_PORT: "0", LOG_LEVEL: "silent", SHUTDOWN_DRAIN_MS: "1000", MONGO_URL: opts.mongoUrl, MONGO_DB: dbName, ...opts.env,
  });
  const directory = createFakeDirectory();
  let offset = 0;
  const now = () => new Date(Date.now() + offset);
  const shared = opts.mongoUrl ? undefined : createEmbeddedDocumentDb();
  const replicas: LoggingInstance[] = [];
  let main: LoggingInstance;
  try {
    main = await startLoggingInstance(config, { now, directory, db: shared });
  } catch (err) {
    await cleanUp(shared, opts.mongoUrl, dbName);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    address: main.address,
    client: main.client,
    directory,
    now,
    advance: (ms) => { offset += ms; },
    async startReplica() {
      const replica = await startLoggingInstance(config, { now, directory, db: shared });
      replicas.push(replica);
      return replica;
    },
    stop() {
      stopped ??= (async () => {
        await Promise.all(replicas.map((r) => r.stop()));
        await main.stop();
        await cleanUp(shared, opts.mongoUrl, dbName);
      })();
      return stopped;
    },
  };
}

/** Starts one instance of the service with `config` (its own store from MONGO_URL unless `db` is given). */
export async function startLoggingInstance(config: LoggingConfig,
  overrides: { now?: () => Date; directory: ProjectDirectory; db?: DocumentDb | undefined }): Promise<LoggingInstance> {
  const service = await startLoggingService(config, createLogger({ service: "logging", level: "silent" }), {
    directory: overrides.directory,
    ...(overrides.now ? { now: overrides.now } : {}),
    ...(overrides.db ? { db: overrides.db } : {}),
  });
  const address = `127.0.0.1:${service.port}`;
  const transport = createGrpcTransport({ address });
  let stopped: Promise<void> | undefined;
  return {
    address,
    client: createClient(LoggingService, transport),
    stop() {
      stopped ??= (async () => {
        transport.close();
        await service.stop();
      })();
      return stopped;
    },
  };
}

async function cleanUp(shared: DocumentDb | undefined, mongoUrl: string | undefined, dbName: string): Promise<void> {
  await shared?.close();
  if (mongoUrl) await dropMongoDatabase(mongoUrl, dbName);
}

/** Drops a MongoDB database through a client of its own. */
export async function dropMongoDatabase(url: string, dbName: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
  try {
    await client.db(dbName).dropDatabase();
  } finally {
    await client.close();
  }
}

// A private FerretDB and processes for outage tests (stopping the shared one would break other suites).
export { freePort, haveFerretdb, startFerretdb, stopProcess };


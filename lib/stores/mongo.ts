/**
 * The MongoDB adapter of the document store port (documents.ts), through the
 * official driver. CI runs it against FerretDB v1.24 (SQLite backend) as the
 * MongoDB, so it keeps to what MongoDB 7 and FerretDB share.
 *
 * What FerretDB v1.24/SQLite lacks or does differently (each probed with the
 * driver against a live server; the contract suite proves what is used):
 * - `$group` accumulators other than `$sum` and `$count`: `$min`, `$max`, `$avg`,
 *   `$first`, `$last`, `$push`, `$addToSet`, `$stdDevPop`, `$mergeObjects`, `$top`,
 *   `$median` fail with NotImplemented (238) `$group accumulator "$min" is not
 *   implemented yet`. Derive averages from `$sum`/`$count`; keep minima and
 *   maxima with the `$min`/`$max` update operators, which work.
 * - A `$group` computes only its FIRST accumulator; every further one silently
 *   comes back 0 (`{ total: { $sum: "$n" }, docs: { $sum: 1 } }` → docs: 0; the
 *   group's documents are iterated once and shared by all accumulators). Use
 *   one accumulator per aggregation, or find the documents and add up in code.
 * - Aggregation expressions (`$add`, `$multiply`, `$cond`, `$literal`,
 *   `$dateTrunc`, `$expr` in `$match`) fail with 238. Worse, `$project: { x: "$n" }`
 *   does not fail: FerretDB answers the literal string "$n". Project by
 *   inclusion or exclusion only.
 * - `$unwind` in the document form `{ path, preserveNullAndEmptyArrays }` → 238
 *   (the string form works); stages `$lookup`, `$facet`, `$sortByCount` → 238.
 * - Index options `expireAfterSeconds` (TTL) and `partialFilterExpression` → 238
 *   `Index option "expireAfterSeconds" is not implemented yet` (`sparse` works):
 *   retention needs a sweeper.
 * - Unique indexes let several documents lack the indexed field (MongoDB
 *   indexes a missing field as null and rejects the second); explicit nulls clash.
 * - A unique clash raised by an update, or by creating a unique index over
 *   duplicates, is InternalError (code 1) "UNIQUE constraint failed", not 11000;
 *   `mongoError` maps both to ALREADY_EXISTS.
 * - An upsert is seeded from the filter's top-level equalities and `$eq`, not
 *   from equalities inside `$and` (MongoDB uses those too).
 * - `$inc` on an int32 field wraps on overflow (2147483000 + 1000 → -2147483296;
 *   MongoDB promotes to int64). This adapter sends `$inc` amounts as BSON
 *   doubles, so counters stay exact up to 2^53 on both servers.
 * - No isolation between connections: updates, findAndModify and upserts read
 *   the document, modify it in FerretDB's process and write it back whole, so
 *   read-modify-writes racing on different connections lose updates (measured:
 *   20 concurrent `findOneAndUpdate({ owner: null }, { $set: { owner } })` → 19
 *   "winners"; 50 concurrent `$inc` upserts of one _id → n = 7 plus 13 E11000).
 *   FerretDB serves one connection strictly in order, so this adapter sends every
 *   read-modify-write (updateOne, updateMany, bulkUpsert, findOneAndUpdate)
 *   through a client of its own holding ONE connection: they are atomic with
 *   respect to each other within one DocumentDb (reads, inserts and deletes
 *   keep the pool, so a long retention delete never stalls them). Across
 *   processes FerretDB has no atomic read-modify-write; only inserts against a
 *   unique key are atomic there, so cross-replica claims should insert a
 *   deterministic _id. An upsert that loses an insert race (11000) is retried
 *   once, as MongoDB does.
 * - Secondary indexes are never used by queries: the SQLite backend pushes
 *   down only a filter that is exactly one `_id` equality (and even that
 *   misses the `_id` index, comparing `_ferretdb_sjson->'$._id'` while the index
 *   is on `_ferretdb_sjson->"_id"`), so every other read scans the collection.
 *   Each index still costs every insert a JSON parse and a B-tree insert
 *   (bench/README.md: five indexes on the request log cut ingest from 15,900
 *   to 8,800 records/s). On FerretDB `ensureIndex` therefore creates unique
 *   indexes only (they enforce constraints) and skips the others.
 * - Change streams (not used).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import {
  Double, MongoBulkWriteError, MongoClient, MongoNetworkError, MongoNotConnectedError, MongoOperationTimeoutError,
  MongoServerClosedError, MongoServerSelectionError, MongoTopologyClosedError, ObjectId,
  type AnyBulkWriteOperation, type Collection, type Document, type MongoClientOptions,
} from "mongodb";
import type { Logger } from "pino";
import { dbCallTraced, serverAttributes, traceDbCall, type DbAttributes, type ServerAttributes } from "../db-tracing.js";
import type { Doc, DocumentCollection, DocumentDb, Filter, FindOptions, Update, UpsertOp } from "./documents.js";

/**
 * Fail fast: an unreachable server fails an operation after ~2 s of server
 * selection; a server that stops answering mid-operation after 15 s. Once
 * connected, the driver keeps monitoring and reconnects by itself when the
 * server returns.
 */
const clientOptions: MongoClientOptions = {
  serverSelectionTimeoutMS: 2_000,
  connectTimeoutMS: 2_000,
  socketTimeoutMS: 15_000,
  maxPoolSize: 20,
  // Undefined fields are left out, as the embedded store does.
  ignoreUndefined: true,
};

/**
 * A DocumentDb on the MongoDB (or FerretDB) at `url`, database `dbName`.
 * Connects on first use; `ping` proves the server is there. Throws INTERNAL
 * for a malformed URL; every method throws ConnectError as mapped by `mongoError`. Every collection operation
 * gets a "mongodb" CLIENT span when the caller's span records (see `collectionRunner`).
 */
export function createMongoDocumentDb(url: string, dbName: string, logger?: Logger): DocumentDb {
  const pooled = connector(() => new MongoClient(url, clientOptions));
  const serial = connector(() => new MongoClient(url, { ...clientOptions, maxPoolSize: 1 })); // read-modify-writes, see above
  const run = runner(logger);
  const database: DbAttributes = { [ATTR_DB_SYSTEM_NAME]: "mongodb", [ATTR_DB_NAMESPACE]: dbName, ...mongoServer(url) };
  // Whether the server is FerretDB (buildInfo names its version), asked once.
  let ferret: Promise<boolean> | undefined;
  const isFerretDb = () => (ferret ??= run(async () => {
    const info = await (await pooled.client()).db(dbName).command({ buildInfo: 1 });
    return typeof info.ferretdbVersion === "string";
  }).catch((err: unknown) => { ferret = undefined; throw err; }));
  return {
    kind: "mongodb",
    collection: <T extends Doc = Doc>(name: string) => mongoCollection<T>(collectionRunner(run, database, name),
      async () => (await pooled.client()).db(dbName).collection<Doc>(name),
      async () => (await serial.client()).db(dbName).collection<Doc>(name),
      isFerretDb,
    ),
    async ping() {
      try {
        await run(async () => (await pooled.client()).db(dbName).command({ ping: 1 }));
      } catch (err) {
        const e = err as ConnectError;
        throw e.code === Code.Unavailable ? e : new ConnectError("document database unavailable", Code.Unavailable, undefined, undefined, e.cause);
      }
    },
    async close() {
      await Promise.all([pooled.close(), serial.close()]);
    },
  };
}

type Run = <R>(op: () => Promise<R>) => Promise<R>;

/**
 * Runs driver calls, mapping their errors with `mongoError`. Logs once when
 * operations start failing with UNAVAILABLE and once when one succeeds again
 * (the driver's own topology events lag: it may not mark a dead server
 * unknown until its next heartbeat, 10 s later).
 */
function runner(logger: Logger | undefined): Run {
  let down = false;
  return async (op) => {
    try {
      const result = await op();
      if (down) logger?.info("MongoDB reachable again");
      down = false;
      return result;
    } catch (err) {
      const mapped = mongoError(err);
      if (mapped.code === Code.Unavailable && !down) {
        down = true;
        logger?.warn({ err }, "MongoDB unavailable; operations fail with UNAVAILABLE until it returns");
      }
      throw mapped;
    }
  };
}

/**
 * One connected MongoClient, made on demand. A MongoClient whose first connect
 * fails is unusable for good (the driver closes its topology and every later
 * operation fails "Topology is closed"), so a failed connect discards the
 * client and the next call starts a new one. Concurrent callers share a connect.
 */
function connector(create: () => MongoClient): { client(): Promise<MongoClient>; close(): Promise<void> } {
  let spare: MongoClient | undefined = guarded(create); // built now, so a malformed URL fails at once
  let connected: Promise<MongoClient> | undefined;
  let closed = false;
  const connect = async (client: MongoClient): Promise<MongoClient> => {
    try {
      return await client.connect();
    } catch (err) {
      connected = undefined;
      await client.close().catch(() => undefined);
      throw err;
    }
  };
  return {
    client() {
      if (closed) return Promise.reject(new MongoTopologyClosedError());
      if (!connected) {
        const next = spare ?? create();
        spare = undefined;
        connected = connect(next);
      }
      return connected;
    },
    async close() {
      closed = true;
      const pending = connected;
      connected = undefined;
      await pending?.then((c) => c.close(), () => undefined);
    },
  };
}

function guarded<R>(make: () => R): R {
  try {
    return make();
  } catch (err) {
    throw mongoError(err);
  }
}

/** Runs one operation of a collection, named as the driver method it calls (`find`, `bulkWrite`…). */
type CollectionRun = <R>(operation: string, op: () => Promise<R>) => Promise<R>;

/**
 * Runs a collection's operations through `run`, each in a "mongodb" CLIENT span (lib/db-tracing.ts) with the
 * collection and operation names, when the caller's span records. Filters, documents and pipelines are never
 * recorded: they hold ids and user data. One span covers the whole operation, its batches and upsert retry.
 */
function collectionRunner(run: Run, database: DbAttributes, collection: string): CollectionRun {
  return (operation, op) => (dbCallTraced()
    ? run(() => traceDbCall({ ...database, [ATTR_DB_COLLECTION_NAME]: collection, [ATTR_DB_OPERATION_NAME]: operation }, op))
    : run(op));
}

/**
 * `server.address` and `server.port` of a MongoDB URL: its first host, port 27017 unless given (none for
 * `mongodb+srv`, whose port comes from DNS). Credentials and options are never read.
 */
function mongoServer(url: string): ServerAttributes {
  const m = /^mongodb(\+srv)?:\/\/(?:[^@/]*@)?([^/?,]+)/.exec(url);
  const hostPort = m?.[2] === undefined ? undefined : /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(m[2]);
  if (!m || !hostPort?.[1]) return {};
  const port = hostPort[2] === undefined ? (m[1] ? undefined : 27017) : Number(hostPort[2]);
  return serverAttributes(hostPort[1].replace(/^\[(.*)\]$/, "$1"), port);
}

type Lazy = () => Promise<Collection<Doc>>;

function mongoCollection<T extends Doc>(run: CollectionRun, reads: Lazy, writes: Lazy, isFerretDb: () => Promise<boolean>): DocumentCollection<T> {
  return {
    insertMany: (docs) => run("insertMany", async () => insertMany(await reads(), docs)),
    find: (filter, options = {}) => run("find", async () => (await (await reads()).find(filter, findOptions(options)).toArray()) as T[]),
    findOne: (filter) => run("findOne", async () => ((await (await reads()).findOne(filter)) ?? undefined) as T | undefined),
    count: (filter) => run("countDocuments", async () => (await reads()).countDocuments(filter)),
    aggregate: <R>(pipeline: readonly Record<string, unknown>[]) =>
      run("aggregate", async () => (await (await reads()).aggregate([...pipeline]).toArray()) as R[]),
    updateOne: (filter, update, options = {}) => run("updateOne", () => retryUpsert(options.upsert, async () => {
      const upsert = options.upsert ?? false;
      const r = await (await writes()).updateOne(filter, driverUpdate(filter, update, upsert), { upsert });
      return { matched: r.matchedCount, upserted: r.upsertedCount > 0 };
    })),
    updateMany: (filter, update) => run("updateMany", async () =>
      ({ matched: (await (await writes()).updateMany(filter, driverUpdate(filter, update, false))).matchedCount })),
    bulkUpsert: (ops) => run("bulkWrite", async () => bulkUpsert(await writes(), ops)),
    findOneAndUpdate: (filter, update, options = {}) => run("findOneAndUpdate", () => retryUpsert(options.upsert, async () => {
      const upsert = options.upsert ?? false;
      const doc = await (await writes()).findOneAndUpdate(filter, driverUpdate(filter, update, upsert),
        { upsert, returnDocument: "after", includeResultMetadata: false });
      return (doc ?? undefined) as T | undefined;
    })),
    deleteMany: (filter) => run("deleteMany", async () => (await (await reads()).deleteMany(filter)).deletedCount),
    async ensureIndex(keys, options) {
      if (!options.unique && await isFerretDb()) return; // never used for reads there, see the top of this file
      await run("createIndex", async () =>
        (await writes()).createIndex(keys, { name: options.name, ...(options.unique ? { unique: true } : {}) }));
    },
  };
}

async function insertMany(coll: Collection<Doc>, docs: readonly Doc[]): Promise<{ inserted: number; duplicates: number[] }> {
  if (docs.length === 0) return { inserted: 0, duplicates: [] };
  for (const doc of docs) {
    // The driver would give an id-less document an ObjectId; the port promises string ids.
    if (typeof doc._id !== "string") throw new ConnectError("document without a string _id", Code.Internal);
  }
  try {
    const r = await coll.insertMany([...docs], { ordered: false });
    return { inserted: r.insertedCount, duplicates: [] };
  } catch (err) {
    const failed = err instanceof MongoBulkWriteError ? writeErrorsOf(err) : [];
    if (failed.length === 0 || !failed.every(isDuplicateKey)) throw err;
    return { inserted: (err as MongoBulkWriteError).insertedCount, duplicates: failed.map((w) => w.index).sort((a, b) => a - b) };
  }
}

/**
 * FerretDB v1 never answers an `update` command that changes 100 or more
 * existing documents (and the database stays stuck until it restarts), so
 * upserts go in sequential batches well below that.
 */
const UPSERT_BATCH = 50;

async function bulkUpsert(coll: Collection<Doc>, ops: readonly UpsertOp[]): Promise<void> {
  for (let i = 0; i < ops.length; i += UPSERT_BATCH) await bulkUpsertBatch(coll, ops.slice(i, i + UPSERT_BATCH));
}

/** One unordered bulkWrite of upserts; the upserts that lost an insert race (11000) are sent once more. */
async function bulkUpsertBatch(coll: Collection<Doc>, ops: readonly UpsertOp[]): Promise<void> {
  let pending = ops;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const batch: AnyBulkWriteOperation<Doc>[] = pending.map((op) => ({
      updateOne: { filter: op.filter, update: driverUpdate(op.filter, op.update, true), upsert: true },
    }));
    try {
      await coll.bulkWrite(batch, { ordered: false });
      return;
    } catch (err) {
      const failed = err instanceof MongoBulkWriteError ? writeErrorsOf(err) : [];
      if (attempt > 0 || failed.length === 0 || !failed.every(isDuplicateKey)) throw err;
      const retry = failed.map((w) => pending[w.index]);
      pending = retry.filter((op): op is UpsertOp => op !== undefined);
    }
  }
}

/** Runs `op`; an upsert that failed on a duplicate key (a concurrent insert won) runs once more and now matches. */
async function retryUpsert<R>(upsert: boolean | undefined, op: () => Promise<R>): Promise<R> {
  try {
    return await op();
  } catch (err) {
    if (!upsert || !isDuplicateKey(err)) throw err;
    return op();
  }
}

/**
 * The update as sent: `$inc` amounts as doubles (see FerretDB's int32 wrap
 * above), and for an upsert whose filter names no `_id`, a string `_id` on
 * insert, so stored ids stay strings as the port promises.
 */
function driverUpdate(filter: Filter, update: Update, upsert: boolean): Document {
  const out: Document = { ...update };
  if (update.$inc) {
    out.$inc = Object.fromEntries(Object.entries(update.$inc).map(([k, v]) => [k, typeof v === "number" ? new Double(v) : v]));
  }
  if (upsert && !("_id" in filter) && update.$setOnInsert?._id === undefined) {
    out.$setOnInsert = { ...update.$setOnInsert, _id: new ObjectId().toHexString() };
  }
  return out;
}

function findOptions(o: FindOptions): { sort?: Document; skip?: number; limit?: number } {
  return { ...(o.sort ? { sort: o.sort } : {}), ...(o.skip ? { skip: o.skip } : {}), ...(o.limit ? { limit: o.limit } : {}) };
}

interface WriteErrorLike { readonly index: number; readonly code?: unknown; readonly errmsg?: string | undefined }

function writeErrorsOf(err: MongoBulkWriteError): WriteErrorLike[] {
  const w = err.writeErrors as WriteErrorLike | WriteErrorLike[] | undefined;
  return w === undefined ? [] : Array.isArray(w) ? w : [w];
}

/** 11000 (MongoDB and FerretDB), or FerretDB's SQLite "UNIQUE constraint failed" (code 1) on updates and index builds. */
function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: unknown; errmsg?: unknown; message?: unknown };
  if (e.code === 11000 || e.code === 11001) return true;
  return /UNIQUE constraint failed/.test(`${String(e.errmsg ?? "")} ${String(e.message ?? "")}`);
}

// Server codes meaning "not now": HostUnreachable, HostNotFound, NetworkTimeout,
// ShutdownInProgress, PrimarySteppedDown, NotWritablePrimary, InterruptedAtShutdown,
// InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary.
const unavailableCodes = new Set([6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436]);
// Driver-internal classes not exported by name (pool closed, checkout queue timeout).
const unavailableNames = new Set(["MongoPoolClosedError", "MongoWaitQueueTimeoutError"]);
// Socket errors the driver lets through unwrapped: writing to a connection the
// server just dropped fails with a plain Error, code EPIPE.
const unavailableErrnos = new Set(["EPIPE", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND"]);

/**
 * The one mapping from driver errors to Connect codes: duplicate key →
 * ALREADY_EXISTS; server selection failure, network error (pool cleared and
 * socket timeouts included), raw socket errno (EPIPE…), operation timeout,
 * closed client, shutdown or failover codes → UNAVAILABLE; anything else →
 * INTERNAL. Messages are client-safe; the driver error is the `cause`. A
 * ConnectError passes unchanged.
 */
export function mongoError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (isDuplicateKey(err) || (err instanceof MongoBulkWriteError && writeErrorsOf(err).some(isDuplicateKey))) {
    return new ConnectError("document already exists", Code.AlreadyExists, undefined, undefined, err);
  }
  const e = err as { code?: unknown; name?: unknown };
  if (err instanceof MongoNetworkError || err instanceof MongoServerSelectionError || err instanceof MongoOperationTimeoutError
    || err instanceof MongoTopologyClosedError || err instanceof MongoNotConnectedError || err instanceof MongoServerClosedError
    || unavailableNames.has(String(e.name)) || (typeof e.code === "number" && unavailableCodes.has(e.code))
    || (typeof e.code === "string" && unavailableErrnos.has(e.code))
    || (err instanceof MongoBulkWriteError && wrapsConnectivityError(err))) {
    return new ConnectError("document database unavailable", Code.Unavailable, undefined, undefined, err);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/**
 * A bulk write that fails as a whole (no write errors) is a MongoBulkWriteError
 * carrying copies of the underlying error's fields, not the error itself: a
 * network error's `beforeHandshake`, a server selection error's `reason`.
 */
function wrapsConnectivityError(err: MongoBulkWriteError): boolean {
  return writeErrorsOf(err).length === 0 && ("beforeHandshake" in err || "reason" in err);
}

import { mkdir } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import {
  ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_QUERY_TEXT, ATTR_DB_SYSTEM_NAME,
} from "@opentelemetry/semantic-conventions";
import pg from "pg";
import type { Logger } from "pino";
import { dbCallTraced, serverAttributes, sqlCollectionName, sqlOperationName, traceDbCall, type DbAttributes } from "../db-tracing.js";

/** A pool of `pg` connections to PostgreSQL or to the embedded PGlite. */
export interface RelationalStore {
  readonly pool: pg.Pool;
  readonly kind: "postgres" | "embedded";
  close(): Promise<void>;
}

export interface RelationalStoreOptions {
  /** `postgres://…`; unset → embedded PGlite served over the Postgres wire protocol. */
  readonly url?: string | undefined;
  /** Where embedded data persists; unset → in memory (tests). */
  readonly dataDir?: string | undefined;
  /** Postgres schema to use on a real server (created if missing), so suites can share one; the embedded store has its own database and ignores it. */
  readonly schema?: string | undefined;
  /** Largest pool for a real server; default 10. Embedded always uses 1. */
  readonly maxConnections?: number | undefined;
  readonly logger?: Logger | undefined;
}

/**
 * Opens the relational store chosen by URL (DESIGN.md "State"). The embedded
 * store is real PostgreSQL compiled to WASM (PGlite), reached through the same
 * `pg` driver and SQL as production, over a loopback socket. PGlite serves one
 * session, so the embedded pool holds exactly one connection: transactions
 * stay isolated because they never interleave.
 */
export async function openRelationalStore(opts: RelationalStoreOptions): Promise<RelationalStore> {
  if (opts.url) {
    if (opts.schema) await ensureSchema(opts.url, opts.schema);
    const pool = createPool(opts.url, opts.maxConnections ?? 10, opts.schema);
    opts.logger?.info({ store: "postgres" }, "relational store: PostgreSQL");
    return { pool, kind: "postgres", close: () => pool.end() };
  }
  if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir ? { dataDir: opts.dataDir } : {});
  // The pool uses one connection at a time; the server admits a few so a
  // connection the pool replaces (pg drops a client after a failed query) can
  // be re-opened before the old socket has finished closing.
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 4 });
  await server.start();
  const pool = createPool(`postgres://postgres@${server.getServerConn()}/postgres`, 1, undefined);
  opts.logger?.info({ store: "embedded", dataDir: opts.dataDir ?? "(memory)" },
    "relational store: embedded PGlite (set DATABASE_URL to use PostgreSQL)");
  return {
    pool,
    kind: "embedded",
    async close() {
      await pool.end();
      await server.stop();
      await db.close();
    },
  };
}

function createPool(url: string, max: number, schema: string | undefined): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    ...(schema ? { options: `-c search_path=${quoteIdent(schema)}` } : {}),
  });
  // An idle client losing its server must not crash the process; the next
  // query reports UNAVAILABLE through pgError.
  pool.on("error", () => undefined);
  return pool;
}

async function ensureSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
  } finally {
    await client.end();
  }
}

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A pool or one of its connections (inside a transaction). */
export type Queryable = pg.Pool | pg.PoolClient;

/**
 * A query function over `db` whose failures are already mapped by `pgError` (`what` names the record in messages).
 * Each statement gets a "postgresql" CLIENT span when the caller's span records (lib/db-tracing.ts).
 */
export function createQuery(db: Queryable) {
  return async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = [], what?: string): Promise<pg.QueryResult<R>> => {
    try {
      return await send<R>(db, sql, params);
    } catch (err) {
      throw pgError(err, what);
    }
  };
}

/**
 * Runs `fn` in one transaction on one connection; rolls back if it throws. BEGIN, COMMIT and ROLLBACK are traced
 * like `createQuery`'s statements.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => { throw pgError(err); });
  try {
    await send(client, "BEGIN");
    const result = await fn(client);
    await send(client, "COMMIT");
    return result;
  } catch (err) {
    await send(client, "ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** `db.query(sql, params)`, in a database span when the active span records (checked first: nothing is built otherwise). */
function send<R extends pg.QueryResultRow>(db: Queryable, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
  if (!dbCallTraced()) return db.query<R>(sql, params);
  return traceDbCall(statementAttributes(db, sql), () => db.query<R>(sql, params));
}

/** The span attributes of `sql` on `db`: the statement text as sent (placeholders, never the values). */
function statementAttributes(db: Queryable, sql: string): DbAttributes {
  const operation = sqlOperationName(sql);
  const table = sqlCollectionName(sql);
  return {
    ...connectionAttributes(db),
    ...(operation ? { [ATTR_DB_OPERATION_NAME]: operation } : {}),
    ...(table ? { [ATTR_DB_COLLECTION_NAME]: table } : {}),
    [ATTR_DB_QUERY_TEXT]: sql,
  };
}

const connections = new WeakMap<Queryable, DbAttributes>();

/**
 * System, database and server of `db` as `pg` resolves them (its config, then the PG* environment), worked out
 * once per pool or connection. PGlite is reached through a pool too, so it reports "postgresql" at its loopback
 * address.
 */
function connectionAttributes(db: Queryable): DbAttributes {
  let attributes = connections.get(db);
  if (attributes === undefined) {
    // A pool has no parameters of its own; a client built from its config (never connected) resolves them as its connections do.
    const params = db instanceof pg.Pool ? new pg.Client(db.options) : db;
    attributes = {
      [ATTR_DB_SYSTEM_NAME]: "postgresql",
      ...(params.database ? { [ATTR_DB_NAMESPACE]: params.database } : {}),
      ...serverAttributes(params.host, params.port),
    };
    connections.set(db, attributes);
  }
  return attributes;
}

const unavailableErrnos = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"]);

/**
 * The one mapping from `pg` driver errors to Connect codes: unique violation →
 * ALREADY_EXISTS, foreign key → FAILED_PRECONDITION, serialization or deadlock
 * → ABORTED, connection loss or shutdown → UNAVAILABLE, anything else →
 * INTERNAL. A ConnectError passes through unchanged.
 */
export function pgError(err: unknown, what = "database"): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? "";
  if (code === "23505") return new ConnectError(`${what} already exists`, Code.AlreadyExists, undefined, undefined, err);
  if (code === "23503") return new ConnectError(`${what} refers to a missing record`, Code.FailedPrecondition, undefined, undefined, err);
  if (code === "40001" || code === "40P01") return new ConnectError("conflicting concurrent update, retry", Code.Aborted, undefined, undefined, err);
  if (unavailableErrnos.has(code) || code.startsWith("08") || code === "57P01" || code === "57P03"
    || /timeout exceeded when trying to connect|Connection terminated/i.test(e.message ?? "")) {
    return new ConnectError("database unavailable", Code.Unavailable, undefined, undefined, err);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

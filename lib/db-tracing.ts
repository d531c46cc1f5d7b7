import { context, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import {
  ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_QUERY_TEXT, ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ERROR_TYPE_VALUE_OTHER,
} from "@opentelemetry/semantic-conventions";
import { tracerGetter } from "./telemetry.js";

/**
 * The attributes of a database CLIENT span, named as the stable OTel database semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/database/database-spans/). Absent values are left out, never
 * undefined. `db.query.text` is SQL only, parameterized as sent: never parameter values, Mongo filters or Redis
 * arguments, which can hold secrets and ids.
 */
export interface DbAttributes extends Attributes {
  [ATTR_DB_SYSTEM_NAME]: "postgresql" | "mongodb" | "redis";
  [ATTR_DB_NAMESPACE]?: string;
  [ATTR_DB_COLLECTION_NAME]?: string;
  [ATTR_DB_OPERATION_NAME]?: string;
  [ATTR_DB_QUERY_TEXT]?: string;
  [ATTR_SERVER_ADDRESS]?: string;
  [ATTR_SERVER_PORT]?: number;
}

const tracer = tracerGetter("mesh.db");

/**
 * Whether a database call made now gets a span: only under an active span that records. Background loops
 * (workers, sweepers, migrations) run with no active span, and an unsampled request's span, or one that has
 * ended (work left running after the reply), records nothing, so none of them gets database spans (and no root
 * traces appear for background work). Allocation-free: adapters call it first and build attributes only when it
 * answers true.
 */
export function dbCallTraced(): boolean {
  return trace.getSpan(context.active())?.isRecording() === true;
}

/**
 * Runs `fn`, one database call, in a CLIENT span named by {@link dbSpanName}, child of the active span; the span
 * ends exactly once when `fn`'s promise settles, with status ERROR, `error.type` (from `errorType`, default
 * {@link dbErrorType}) and the exception recorded when it rejects. Answers `fn`'s own promise, so its result or
 * error passes through untouched. When {@link dbCallTraced} is false it just returns `fn()` and creates nothing.
 * The span is not made active while `fn` runs: a database call has no traced work of its own under it.
 */
export function traceDbCall<T>(attributes: DbAttributes, fn: () => Promise<T>, errorType = dbErrorType): Promise<T> {
  const parent = context.active();
  if (trace.getSpan(parent)?.isRecording() !== true) return fn();
  const span = tracer().startSpan(dbSpanName(attributes), { kind: SpanKind.CLIENT, attributes }, parent);
  const fail = (err: unknown) => {
    span.setAttribute(ATTR_ERROR_TYPE, errorType(err));
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    span.end();
  };
  let promise: Promise<T>;
  try {
    promise = fn();
  } catch (err) {
    fail(err);
    throw err;
  }
  promise.then(() => span.end(), fail);
  return promise;
}

/**
 * The span name the conventions ask for: `{operation} {collection}`, else `{operation}`, else `{collection}`,
 * else the system name.
 */
export function dbSpanName(attributes: DbAttributes): string {
  const operation = attributes[ATTR_DB_OPERATION_NAME];
  const collection = attributes[ATTR_DB_COLLECTION_NAME];
  if (operation !== undefined) return collection === undefined ? operation : `${operation} ${collection}`;
  return collection ?? attributes[ATTR_DB_SYSTEM_NAME];
}

/**
 * `error.type` of a failed call: the error's `code` when it has one (a PostgreSQL SQLSTATE such as `23505`, a
 * MongoDB server code such as `11000`, a socket errno such as `ECONNREFUSED`), else its class name when more
 * specific than `Error`, else `_OTHER`.
 */
export function dbErrorType(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | null | undefined;
  if (typeof e?.code === "string" && e.code !== "") return e.code;
  if (typeof e?.code === "number") return String(e.code);
  if (err instanceof Error && err.name !== "Error") return err.name;
  return ERROR_TYPE_VALUE_OTHER;
}

// Whitespace, comments and opening parentheses before a statement's first keyword.
const LEAD = String.raw`^(?:\s|--[^\n]*|/\*[\s\S]*?\*/|\()*`;
// An SQL identifier, optionally schema-qualified: plain or double-quoted.
const NAME = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const IDENT = String.raw`${NAME}(?:\.${NAME})?`;
const firstKeyword = new RegExp(`${LEAD}([A-Za-z]+)`);
const dmlTarget: Readonly<Record<string, RegExp>> = {
  INSERT: new RegExp(String.raw`${LEAD}INSERT\s+INTO\s+(${IDENT})`, "i"),
  UPDATE: new RegExp(String.raw`${LEAD}UPDATE\s+(?:ONLY\s+)?(${IDENT})`, "i"),
  DELETE: new RegExp(String.raw`${LEAD}DELETE\s+FROM\s+(?:ONLY\s+)?(${IDENT})`, "i"),
};
// A table after FROM; not a function call such as `FROM unnest($1)`.
const fromTable = new RegExp(String.raw`\bFROM\s+(${IDENT})(?![\w$."]|\s*\()`, "gi");
// Several sources: a join, DELETE … USING, or a comma after the first table (and its alias).
const manySources = new RegExp(String.raw`\b(?:JOIN|USING)\b|\bFROM\s+${IDENT}(?:\s+(?:AS\s+)?[A-Za-z_]\w*)?\s*,`, "i");

/** `db.operation.name` of an SQL statement: its first keyword in upper case (SELECT, INSERT, WITH, BEGIN…). */
export function sqlOperationName(sql: string): string | undefined {
  return firstKeyword.exec(sql)?.[1]?.toUpperCase();
}

/**
 * `db.collection.name` of an SQL statement when it is easily known, as written: the one table an INSERT, UPDATE
 * or DELETE targets, or a SELECT reads, provided every `FROM` in the statement names that same table and there
 * is no join. Anything else (WITH, joins, several tables, no table) answers undefined rather than a guess.
 */
export function sqlCollectionName(sql: string): string | undefined {
  const operation = sqlOperationName(sql);
  if (operation === undefined || manySources.test(sql)) return undefined;
  let table = dmlTarget[operation]?.exec(sql)?.[1];
  if (table === undefined && operation !== "SELECT") return undefined;
  for (const m of sql.matchAll(fromTable)) {
    if (table === undefined) table = m[1];
    else if (m[1] !== table) return undefined;
  }
  return table;
}

/** The `server.address` and `server.port` of a span. */
export type ServerAttributes = Pick<DbAttributes, typeof ATTR_SERVER_ADDRESS | typeof ATTR_SERVER_PORT>;

/** `server.address` and `server.port` attributes, leaving out what is unknown. */
export function serverAttributes(address: string | undefined, port: number | undefined): ServerAttributes {
  return {
    ...(address ? { [ATTR_SERVER_ADDRESS]: address } : {}),
    ...(port !== undefined && Number.isInteger(port) ? { [ATTR_SERVER_PORT]: port } : {}),
  };
}

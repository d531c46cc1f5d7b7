import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Aggregator, Query, update as applyModifier } from "mingo";
import type { Modifier } from "mingo/updater";
import type { Doc, DocumentCollection, DocumentDb, Filter, FindOptions, IndexOptions, SortSpec, Update } from "./documents.js";

/**
 * The in-process adapter of the document store port (documents.ts): the
 * default when MONGO_URL is unset. Filters, sorts, updates and pipelines run
 * on mingo, so they mean what they mean on MongoDB. Each operation runs to the
 * end synchronously inside its async method, so operations are atomic with
 * respect to each other (findOneAndUpdate leases included). Documents are
 * deep-copied in and out; undefined fields are dropped as the driver does.
 * Unique indexes follow MongoDB (a missing field counts as null; array values
 * are compared whole, not per element).
 *
 * It refuses, with INTERNAL, what the port excludes because FerretDB lacks it
 * (see mongo.ts): a feature used here would otherwise pass local tests and
 * fail on the real server.
 *
 * It makes no tracing spans: an operation is a call into an in-process data
 * structure, not a database call (no `db.system.name` of the conventions fits
 * it), and it would cost every request for nothing a trace needs.
 * The MongoDB adapter traces its operations (mongo.ts, lib/db-tracing.ts).
 */
export function createEmbeddedDocumentDb(): DocumentDb {
  const stores = new Map<string, Store>();
  return {
    kind: "embedded",
    collection<T extends Doc = Doc>(name: string): DocumentCollection<T> {
      let store = stores.get(name);
      if (!store) stores.set(name, (store = { docs: new Map(), indexes: new Map() }));
      return embeddedCollection(store) as unknown as DocumentCollection<T>;
    },
    ping: async () => undefined,
    async close() {
      stores.clear();
    },
  };
}

interface Store {
  readonly docs: Map<string, Doc>;
  readonly indexes: Map<string, Index>;
}

interface Index {
  readonly keys: SortSpec;
  readonly unique: boolean;
  /** Unique indexes only: key value → _id holding it. */
  readonly entries: Map<string, string>;
}

function embeddedCollection(s: Store): DocumentCollection {
  return {
    insertMany: (docs) => run(() => {
      if (docs.some((doc) => typeof doc._id !== "string")) throw new ConnectError("document without a string _id", Code.Internal);
      const duplicates: number[] = [];
      docs.forEach((doc, i) => {
        if (s.docs.has(doc._id) || clash(s, doc)) duplicates.push(i);
        else put(s, copy(doc));
      });
      return { inserted: docs.length - duplicates.length, duplicates };
    }),
    find: (filter, options = {}) => run(() => select(s, filter, options).map(copy)),
    findOne: (filter) => run(() => {
      const doc = select(s, filter, { limit: 1 })[0];
      return doc && copy(doc);
    }),
    count: (filter) => run(() => select(s, filter, {}).length),
    aggregate: <R>(pipeline: readonly Record<string, unknown>[]) => run(() => {
      pipeline.forEach(checkStage);
      return new Aggregator(pipeline.flatMap(rewriteCount), {}).run([...s.docs.values()]).map(copy) as R[];
    }),
    updateOne: (filter, update, options = {}) => run(() => {
      const r = updateFirst(s, filter, update, options.upsert ?? false);
      return { matched: r.upserted ? 0 : r.doc ? 1 : 0, upserted: r.upserted };
    }),
    updateMany: (filter, update) => run(() => {
      const matches = select(s, filter, {});
      for (const doc of matches) replace(s, doc, modified(doc, update, false));
      return { matched: matches.length };
    }),
    bulkUpsert: (ops) => run(() => {
      // Unordered, like the driver's bulkWrite: every op that can apply does; the first failure is thrown after.
      let first: unknown;
      for (const op of ops) {
        try {
          updateFirst(s, op.filter, op.update, true);
        } catch (err) {
          first ??= err;
        }
      }
      if (first !== undefined) throw first;
    }),
    findOneAndUpdate: (filter, update, options = {}) => run(() => {
      const { doc } = updateFirst(s, filter, update, options.upsert ?? false);
      return doc && copy(doc);
    }),
    deleteMany: (filter) => run(() => {
      const matches = select(s, filter, {});
      for (const doc of matches) remove(s, doc);
      return matches.length;
    }),
    ensureIndex: (keys, options) => run(() => ensureIndex(s, keys, options)),
  };
}

/** Matching stored documents (not copies), sorted and sliced like a MongoDB cursor (limit 0 = none). */
function select(s: Store, filter: Filter, o: FindOptions): Doc[] {
  checkFilter(filter);
  // A filter naming its _id or _ids (rollups, leases) looks them up instead of scanning; mingo still checks the whole filter.
  const ids = idsOf(filter._id);
  const candidates = ids ? [...new Set(ids)].flatMap((id) => s.docs.get(id) ?? []) : [...s.docs.values()];
  let cursor = new Query(filter, {}).find<Doc>(candidates);
  if (o.sort) cursor = cursor.sort(o.sort);
  if (o.skip) cursor = cursor.skip(o.skip);
  if (o.limit) cursor = cursor.limit(o.limit);
  return cursor.all();
}

/** The _ids an `_id` condition admits when it is one string or a lone `$in` of strings; undefined otherwise. */
function idsOf(cond: unknown): string[] | undefined {
  if (typeof cond === "string") return [cond];
  if (cond && typeof cond === "object" && !Array.isArray(cond) && Object.keys(cond).length === 1) {
    const list = (cond as { $in?: unknown }).$in;
    if (Array.isArray(list) && list.every((x) => typeof x === "string")) return list as string[];
  }
  return undefined;
}

/** Updates the first match; with `upsert`, inserts when none matches. Answers the stored document after. */
function updateFirst(s: Store, filter: Filter, update: Update, upsert: boolean): { doc?: Doc; upserted: boolean } {
  const [found] = select(s, filter, { limit: 1 });
  if (found) {
    const next = modified(found, update, false);
    replace(s, found, next);
    return { doc: next, upserted: false };
  }
  if (!upsert) return { upserted: false };
  const seed = equalities(filter);
  seed._id ??= update.$setOnInsert?._id ?? randomBytes(12).toString("hex");
  const doc = modified(seed as Doc, update, true);
  if (typeof doc._id !== "string") throw new ConnectError("document without a string _id", Code.Internal);
  if (s.docs.has(doc._id) || clash(s, doc)) throw new ConnectError("document already exists", Code.AlreadyExists);
  put(s, doc);
  return { doc, upserted: true };
}

const updateOperators = new Set(["$set", "$setOnInsert", "$inc", "$max", "$min", "$unset"]);

/** A copy of `doc` with `update` applied; `$setOnInsert` counts only when inserting. */
function modified(doc: Doc, update: Update, inserting: boolean): Doc {
  const operators = Object.keys(update);
  if (operators.length === 0) throw new ConnectError("an update needs at least one operator", Code.Internal);
  for (const op of operators) {
    if (!updateOperators.has(op)) throw new ConnectError(`update operator ${op} is not supported`, Code.Internal);
  }
  const { $setOnInsert, ...ops } = copy(update) as Update;
  const { _id: _ignored, ...onInsert } = $setOnInsert ?? {};
  if (inserting && Object.keys(onInsert).some((k) => ops.$set && k in ops.$set)) {
    throw new ConnectError("$set and $setOnInsert name the same field", Code.Internal);
  }
  const modifier = inserting ? { ...ops, $set: { ...ops.$set, ...onInsert } } : ops;
  const next = copy(doc);
  for (const path of Object.keys(ops.$inc ?? {})) {
    const value = valueAt(next, path);
    if (value !== undefined && typeof value !== "number") throw new ConnectError(`cannot $inc the non-numeric field ${path}`, Code.Internal);
  }
  applyModifier(next, modifier as Modifier<Doc>); // throws on conflicting paths and on changing _id, as MongoDB does
  return next;
}

/** The document an upsert starts from: the filter's equality fields (plain values and $eq, inside $and too). */
function equalities(filter: Filter): Record<string, unknown> {
  const seed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key === "$and" && Array.isArray(value)) Object.assign(seed, ...value.map((f: Filter) => equalities(f)));
    if (key.startsWith("$")) continue;
    const eq = isOperatorObject(value) ? (value as { $eq?: unknown }).$eq : value instanceof RegExp ? undefined : value;
    if (eq === undefined) continue;
    if (key === "_id") seed._id = copy(eq); // mingo refuses to $set _id, even on a new document
    else applyModifier(seed, { $set: { [key]: copy(eq) } });
  }
  return seed;
}

function ensureIndex(s: Store, keys: SortSpec, options: IndexOptions): void {
  const unique = options.unique ?? false;
  const existing = s.indexes.get(options.name);
  if (existing) {
    if (JSON.stringify(existing.keys) === JSON.stringify(keys) && existing.unique === unique) return;
    throw new ConnectError(`index ${options.name} exists with other keys or options`, Code.Internal);
  }
  const entries = new Map<string, string>();
  if (unique) {
    for (const doc of s.docs.values()) {
      const key = indexKey(doc, keys);
      if (entries.has(key)) throw new ConnectError("document already exists", Code.AlreadyExists);
      entries.set(key, doc._id);
    }
  }
  s.indexes.set(options.name, { keys, unique, entries });
}

function clash(s: Store, doc: Doc): boolean {
  for (const index of s.indexes.values()) {
    const holder = index.unique ? index.entries.get(indexKey(doc, index.keys)) : undefined;
    if (holder !== undefined && holder !== doc._id) return true;
  }
  return false;
}

function put(s: Store, doc: Doc): void {
  s.docs.set(doc._id, doc);
  for (const index of s.indexes.values()) if (index.unique) index.entries.set(indexKey(doc, index.keys), doc._id);
}

function remove(s: Store, doc: Doc): void {
  s.docs.delete(doc._id);
  for (const index of s.indexes.values()) if (index.unique) index.entries.delete(indexKey(doc, index.keys));
}

function replace(s: Store, previous: Doc, next: Doc): void {
  if (clash(s, next)) throw new ConnectError("document already exists", Code.AlreadyExists);
  remove(s, previous);
  put(s, next);
}

/** A string equal for values MongoDB's index treats as equal (missing = null, Dates by instant). */
function indexKey(doc: Doc, keys: SortSpec): string {
  return JSON.stringify(Object.keys(keys).map((path) => canonical(valueAt(doc, path))));
}

function canonical(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  if (v instanceof Date) return { d: v.getTime() };
  if (Array.isArray(v)) return { a: v.map(canonical) };
  if (typeof v === "object") return { o: Object.entries(v).map(([k, x]) => [k, canonical(x)]) };
  return v;
}

function valueAt(doc: unknown, path: string): unknown {
  let v = doc;
  for (const part of path.split(".")) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/** Deep copy of plain data: objects without their undefined fields, undefined array items as null (like the driver). */
function copy<T>(v: T): T {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof Date) return new Date(v.getTime()) as T;
  if (v instanceof RegExp) return new RegExp(v.source, v.flags) as T;
  if (Array.isArray(v)) return v.map((x: unknown) => (x === undefined ? null : copy(x))) as T;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return structuredClone(v);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = copy(x);
  return out as T;
}

// ---------------------------------------------------------------------------
// The port's subset of the query language (mongo.ts lists what FerretDB lacks).

const logicalOperators = new Set(["$and", "$or", "$nor"]);
const fieldOperators = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options", "$not"]);
const stages = new Set(["$match", "$group", "$sort", "$limit", "$skip", "$project", "$unwind", "$count"]);

function isOperatorObject(v: unknown): boolean {
  return v !== null && typeof v === "object" && !(v instanceof Date) && !(v instanceof RegExp) && !Array.isArray(v)
    && Object.keys(v).some((k) => k.startsWith("$"));
}

function unsupported(what: string): ConnectError {
  return new ConnectError(`${what} is not supported by the document store port`, Code.Internal);
}

function checkFilter(filter: Filter): void {
  for (const [key, value] of Object.entries(filter)) {
    if (logicalOperators.has(key) && Array.isArray(value)) value.forEach((f: Filter) => checkFilter(f));
    else if (key.startsWith("$")) throw unsupported(`query operator ${key}`);
    else if (isOperatorObject(value)) checkFieldOperators(value as Record<string, unknown>);
  }
}

function checkFieldOperators(ops: Record<string, unknown>): void {
  for (const [op, arg] of Object.entries(ops)) {
    if (!fieldOperators.has(op)) throw unsupported(`query operator ${op}`);
    if (op === "$not" && isOperatorObject(arg)) checkFieldOperators(arg as Record<string, unknown>);
  }
}

const isFieldPath = (v: unknown): boolean => typeof v === "string" && v.startsWith("$");

function checkStage(stage: Record<string, unknown>): void {
  const [name, ...more] = Object.keys(stage);
  if (name === undefined || more.length > 0 || !stages.has(name)) throw unsupported(`aggregation stage ${name ?? "{}"}`);
  const arg = stage[name];
  if (name === "$match") checkFilter(arg as Filter);
  if (name === "$group") checkGroup(arg as Record<string, unknown>);
  if (name === "$project" && !Object.values(arg as object).every((v) => v === 0 || v === 1 || typeof v === "boolean")) {
    throw unsupported("$project other than field inclusion or exclusion");
  }
  if (name === "$unwind" && !isFieldPath(arg)) throw unsupported("$unwind other than a field path");
}

function checkGroup(group: Record<string, unknown>): void {
  const { _id: id, ...fields } = group;
  const idOk = !isOperatorObject(id) && (id === null || typeof id !== "object" || Object.values(id).every(isFieldPath));
  if (!idOk) throw unsupported("$group _id other than null, a constant, a field path or an object of field paths");
  // FerretDB v1.24 computes only the first accumulator of a $group; the others come back 0.
  if (Object.keys(fields).length > 1) throw unsupported("$group with more than one accumulator");
  for (const acc of Object.values(fields)) {
    const [op, ...more] = Object.keys(acc as object);
    const arg = (acc as Record<string, unknown>)[op ?? ""];
    const ok = more.length === 0 && ((op === "$sum" && (isFieldPath(arg) || typeof arg === "number")) || op === "$count");
    if (!ok) throw unsupported(`$group accumulator ${op ?? "{}"}`);
  }
}

/** `$count` as MongoDB defines it (mingo answers a zero count for no input; MongoDB answers nothing). */
function rewriteCount(stage: Record<string, unknown>): Record<string, unknown>[] {
  if (!("$count" in stage)) return [stage];
  return [{ $group: { _id: null, [String(stage.$count)]: { $sum: 1 } } }, { $project: { _id: 0 } }];
}

async function run<R>(op: () => R): Promise<R> {
  try {
    return op();
  } catch (err) {
    throw embeddedError(err);
  }
}

/**
 * The one error mapping of this adapter: its own ConnectErrors pass; mingo's
 * (bad operator use, conflicting update paths, changing `_id`) are INTERNAL, as
 * the server's are, with mingo's error as the cause.
 */
function embeddedError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return new ConnectError("invalid document operation", Code.Internal, undefined, undefined, err);
}

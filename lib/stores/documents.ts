/**
 * The document store port shared by the logging and analytics services: the
 * small part of MongoDB they use, restricted to what MongoDB 7 and FerretDB
 * both support. Two adapters implement it and pass one contract suite:
 * `mongo.ts` (the official driver, for MongoDB or FerretDB) and
 * `embedded-documents.ts` (in-process, filters, updates and pipelines run by
 * mingo). Every method throws ConnectError: UNAVAILABLE when the server cannot
 * be reached (promptly, never hanging), ALREADY_EXISTS for a unique clash
 * outside `insertMany`, INTERNAL otherwise.
 */

/** A stored document. `_id` is always a string in this mesh. */
export interface Doc {
  _id: string;
  [field: string]: unknown;
}

/** A MongoDB query filter (`$eq`, `$in`, `$gte`, `$lt`, `$regex` anchored, `$exists`, `$and`, `$or`). */
export type Filter = Record<string, unknown>;

/** An update with `$set`, `$setOnInsert`, `$inc`, `$max`, `$min`, `$unset` only. */
export type Update = Partial<Record<"$set" | "$setOnInsert" | "$inc" | "$max" | "$min" | "$unset", Record<string, unknown>>>;

export type SortSpec = Record<string, 1 | -1>;

export interface FindOptions {
  readonly sort?: SortSpec;
  readonly skip?: number;
  readonly limit?: number;
}

export interface UpsertOp {
  readonly filter: Filter;
  readonly update: Update;
}

export interface IndexOptions {
  /** Index name; required so creating it again is a no-op. */
  readonly name: string;
  readonly unique?: boolean;
}

export interface DocumentCollection<T extends Doc = Doc> {
  /**
   * Inserts unordered: every document that can be stored is. Answers the
   * indexes (into `docs`) rejected because their `_id` or a unique key
   * already exists; other failures throw.
   */
  insertMany(docs: readonly T[]): Promise<{ inserted: number; duplicates: number[] }>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  findOne(filter: Filter): Promise<T | undefined>;
  count(filter: Filter): Promise<number>;
  /**
   * Runs an aggregation pipeline: $match, $group with ONE accumulator ($sum
   * or $count; FerretDB computes only the first and knows no others), $sort,
   * $limit, $skip, $project by inclusion or exclusion only (no expressions),
   * $unwind of a field path, $count.
   */
  aggregate<R = Doc>(pipeline: readonly Record<string, unknown>[]): Promise<R[]>;
  /** Updates one document; with `upsert`, inserts it when none matches. */
  updateOne(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<{ matched: number; upserted: boolean }>;
  updateMany(filter: Filter, update: Update): Promise<{ matched: number }>;
  /** Applies many upserts in one round trip (rollup increments). */
  bulkUpsert(ops: readonly UpsertOp[]): Promise<void>;
  /**
   * Atomically finds one document matching `filter`, applies `update`, and
   * answers the document after the update (or undefined when none matched and
   * no upsert). Atomic against other calls of the same process; across
   * processes on FerretDB it is not (FerretDB reads, modifies and writes back
   * without isolation), so cross-replica claims must insert against a unique
   * key instead.
   */
  findOneAndUpdate(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<T | undefined>;
  deleteMany(filter: Filter): Promise<number>;
  /** Creates the index if missing (keys in order, 1 or -1). */
  ensureIndex(keys: SortSpec, options: IndexOptions): Promise<void>;
}

export interface DocumentDb {
  readonly kind: "mongodb" | "embedded";
  collection<T extends Doc = Doc>(name: string): DocumentCollection<T>;
  /** Resolves when the server answers; throws UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

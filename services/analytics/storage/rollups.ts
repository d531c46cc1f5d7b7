import type { Doc, DocumentDb, Filter, UpsertOp } from "../../../lib/stores/documents.js";
import { mergeHistogram } from "../domain/histogram.js";
import type { Dimension, RollupDelta } from "../domain/rollup.js";

export const ROLLUPS_COLLECTION = "rollups_minute";

/** A stored per-minute rollup. `h` is the latency histogram, `u` the users sketch. */
export interface RollupDoc extends Doc {
  dim: Dimension;
  tenant: string;
  key: string;
  minute: Date;
  count: number;
  errors: number;
  latencySum: number;
  cacheHits: number;
  cacheMisses: number;
  rateLimited: number;
  lastAt: Date;
  h?: Record<string, number>;
  u?: Record<string, number>;
}

/** Totals of one key over a window, as the top-N queries rank them. */
export interface KeyTotals {
  key: string;
  tenant: string;
  count: number;
  errors: number;
  latencySum: number;
  lastAt: Date;
  histogram: Record<string, number>;
}

/** Tenants a read covers: every tenant, or these. */
export type TenantSet = "all" | readonly string[];

export interface RollupQuery {
  readonly dim: Dimension;
  readonly tenants: TenantSet;
  readonly from: Date;
  readonly to: Date;
  readonly keys?: readonly string[];
}

function match(q: RollupQuery): Filter {
  const f: Filter = { dim: q.dim, minute: { $gte: q.from, $lt: q.to } };
  if (q.tenants !== "all") f.tenant = { $in: [...q.tenants] };
  if (q.keys) f.key = { $in: [...q.keys] };
  return f;
}

/** Per-minute rollups in a DocumentDb. */
export function createRollupStore(db: DocumentDb) {
  const rollups = db.collection<RollupDoc>(ROLLUPS_COLLECTION);
  return {
    async prepare(): Promise<void> {
      await rollups.ensureIndex({ dim: 1, tenant: 1, minute: 1 }, { name: "by_dim_tenant_minute" });
      await rollups.ensureIndex({ dim: 1, minute: 1 }, { name: "by_dim_minute" });
    },

    /** Adds deltas: counters and histogram buckets by `$inc`, the users sketch and last time by `$max`. */
    async apply(deltas: Iterable<[string, RollupDelta]>): Promise<void> {
      const ops: UpsertOp[] = [];
      for (const [id, d] of deltas) {
        const inc: Record<string, number> = {
          count: d.count, errors: d.errors, latencySum: d.latencySum, cacheHits: d.cacheHits,
          cacheMisses: d.cacheMisses, rateLimited: d.rateLimited,
        };
        for (const [b, n] of Object.entries(d.histogram)) inc[`h.${b}`] = n;
        const max: Record<string, unknown> = { lastAt: d.lastAt };
        for (const [i, r] of Object.entries(d.users)) max[`u.${i}`] = r;
        ops.push({
          filter: { _id: id },
          update: { $setOnInsert: { dim: d.dim, tenant: d.tenant, key: d.key, minute: d.minute }, $inc: inc, $max: max },
        });
      }
      await rollups.bulkUpsert(ops);
    },

    /** Every rollup of the query, oldest minute first. */
    read: (q: RollupQuery) => rollups.find(match(q), { sort: { minute: 1 } }),

    /**
     * Keys of a dimension ranked by request count over the window, summed
     * across tenants (`tenant` is one of them: for API keys, which belong to
     * one project, that project). Ranks with one `$group` (FerretDB computes
     * one accumulator per group) and totals the winners' documents here.
     */
    async top(q: RollupQuery, limit: number): Promise<KeyTotals[]> {
      const ranked = await rollups.aggregate<{ _id: string; count: number }>([
        { $match: match(q) },
        { $group: { _id: "$key", count: { $sum: "$count" } } },
        { $sort: { count: -1, _id: 1 } },
        { $limit: limit },
      ]);
      if (ranked.length === 0) return [];
      const totals = new Map<string, KeyTotals>(ranked.map((r) => [r._id, { key: r._id, tenant: "", count: 0, errors: 0, latencySum: 0, lastAt: new Date(0), histogram: {} }]));
      for (const d of await rollups.find(match({ ...q, keys: [...totals.keys()] }))) {
        const t = totals.get(d.key)!;
        t.tenant ||= d.tenant;
        t.count += d.count;
        t.errors += d.errors;
        t.latencySum += d.latencySum;
        if (d.lastAt > t.lastAt) t.lastAt = d.lastAt;
        mergeHistogram(t.histogram, d.h);
      }
      return [...totals.values()];
    },

    /** Forgets rollups of minutes before `before`. */
    deleteOlderThan: (before: Date) => rollups.deleteMany({ minute: { $lt: before } }),
  };
}

export type RollupStore = ReturnType<typeof createRollupStore>;

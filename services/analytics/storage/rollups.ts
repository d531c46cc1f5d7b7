import type { Doc, DocumentCollection, DocumentDb, Filter, UpsertOp } from "../../../lib/stores/documents.js";
import { mergeHistogram } from "../domain/histogram.js";
import { mergeSketch } from "../domain/hll.js";
import { ALL_TENANTS, rollupId, type Dimension, type RollupDelta } from "../domain/rollup.js";

export const ROLLUPS_COLLECTION = "rollups_minute";
export const HOURLY_COLLECTION = "rollups_hour";

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** Ids per `$in` read. */
const ID_CHUNK = 1_000;

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

/**
 * A stored hour of one tenant's `total` dimension. The histogram and the
 * users sketch are packed into one JSON string each: a document of a dozen
 * fields instead of hundreds reads several times faster on FerretDB, which
 * decodes every stored field (bench/README.md). Packed fields cannot take
 * `$inc`/`$max`, so the rollup worker (one lease holder, the only writer)
 * reads the hours a round touches, merges and writes them back whole.
 */
export interface HourDoc extends Doc {
  tenant: string;
  hour: Date;
  count: number;
  errors: number;
  latencySum: number;
  cacheHits: number;
  cacheMisses: number;
  rateLimited: number;
  lastAt: Date;
  h: string;
  u: string;
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
  // Every tenant's total is kept once more under ALL_TENANTS: read that one, or the tenants asked for.
  if (q.tenants !== "all") f.tenant = { $in: [...q.tenants] };
  else if (q.dim === "total") f.tenant = ALL_TENANTS;
  if (q.keys) f.key = { $in: [...q.keys] };
  return f;
}

/** Document id of a tenant's hour. */
export function hourId(tenant: string, hour: Date): string {
  return `hour|${tenant}|${hour.toISOString()}`;
}

const hourOf = (minute: Date) => new Date(Math.floor(minute.getTime() / HOUR) * HOUR);

/**
 * The hour documents after adding the `total`-dimension deltas (others are
 * ignored) to the `stored` ones: one per hour and tenant touched.
 */
export function hourDocsOf(deltas: Iterable<RollupDelta>, stored: ReadonlyMap<string, HourDoc> = new Map()): HourDoc[] {
  const open = new Map<string, RollupDoc>();
  for (const d of deltas) {
    if (d.dim !== "total") continue;
    const hour = hourOf(d.minute);
    const id = hourId(d.tenant, hour);
    let t = open.get(id);
    if (!t) {
      const prev = stored.get(id);
      t = prev ? unpackHour(prev) : {
        _id: id, dim: "total", tenant: d.tenant, key: "", minute: hour, count: 0, errors: 0, latencySum: 0,
        cacheHits: 0, cacheMisses: 0, rateLimited: 0, lastAt: d.lastAt, h: {}, u: {},
      };
      open.set(id, t);
    }
    t.count += d.count;
    t.errors += d.errors;
    t.latencySum += d.latencySum;
    t.cacheHits += d.cacheHits;
    t.cacheMisses += d.cacheMisses;
    t.rateLimited += d.rateLimited;
    mergeHistogram(t.h!, d.histogram);
    mergeSketch(t.u!, d.users);
    if (d.lastAt > t.lastAt) t.lastAt = d.lastAt;
  }
  return [...open.values()].map((t) => ({
    _id: t._id, tenant: t.tenant, hour: t.minute, count: t.count, errors: t.errors, latencySum: t.latencySum,
    cacheHits: t.cacheHits, cacheMisses: t.cacheMisses, rateLimited: t.rateLimited, lastAt: t.lastAt,
    h: JSON.stringify(t.h), u: JSON.stringify(t.u),
  }));
}

/** An hour document in the shape of a minute rollup (`minute` = the hour's start). */
function unpackHour(d: HourDoc): RollupDoc {
  return {
    _id: d._id, dim: "total", tenant: d.tenant, key: "", minute: d.hour, count: d.count, errors: d.errors, latencySum: d.latencySum,
    cacheHits: d.cacheHits, cacheMisses: d.cacheMisses, rateLimited: d.rateLimited, lastAt: d.lastAt,
    h: JSON.parse(d.h) as Record<string, number>, u: JSON.parse(d.u) as Record<string, number>,
  };
}

/** Starts of the minutes in [from, to). */
function minutesIn(from: number, to: number): number[] {
  const out: number[] = [];
  for (let m = Math.ceil(from / MINUTE) * MINUTE; m < to; m += MINUTE) out.push(m);
  return out;
}

/**
 * Per-minute rollups of every dimension, plus hour rollups of the `total`
 * dimension, in a DocumentDb. Totals over a window read the whole hours from
 * hour documents and only the minutes at the window's ragged edges from
 * minute documents, all by `_id`: a one-day summary reads 24 hour documents
 * per tenant (and every tenant's traffic is also summed under ALL_TENANTS,
 * so an all-tenant read is one tenant), never a scan of the minute rollups.
 */
export function createRollupStore(db: DocumentDb) {
  const rollups = db.collection<RollupDoc>(ROLLUPS_COLLECTION);
  const hours = db.collection<HourDoc>(HOURLY_COLLECTION);

  async function byIds<T extends Doc>(coll: DocumentCollection<T>, ids: string[]): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < ids.length; i += ID_CHUNK) out.push(...await coll.find({ _id: { $in: ids.slice(i, i + ID_CHUNK) } }));
    return out;
  }

  /** Adds the total-dimension deltas into their hour documents (read, merge, write back). */
  async function applyHours(deltas: readonly RollupDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    const ids = [...new Set(deltas.map((d) => hourId(d.tenant, hourOf(d.minute))))];
    const stored = new Map((await byIds(hours, ids)).map((d) => [d._id, d]));
    const ops: UpsertOp[] = hourDocsOf(deltas, stored).map(({ _id, ...fields }) => ({ filter: { _id }, update: { $set: fields } }));
    await hours.bulkUpsert(ops);
  }

  return {
    async prepare(): Promise<void> {
      await rollups.ensureIndex({ dim: 1, tenant: 1, minute: 1 }, { name: "by_dim_tenant_minute" });
      await rollups.ensureIndex({ dim: 1, minute: 1 }, { name: "by_dim_minute" });
    },

    /**
     * Adds deltas: into minute documents with counters and histogram buckets
     * by `$inc`, the users sketch and last time by `$max`; then the
     * total-dimension ones into their hour documents.
     */
    async apply(deltas: Iterable<[string, RollupDelta]>): Promise<void> {
      // Written in the order readers wait on: other dimensions, tenant totals, the all-tenant totals,
      // then hours; so once the all-tenant total counts a record, every rollup of it is stored.
      const waves: [UpsertOp[], UpsertOp[], UpsertOp[]] = [[], [], []];
      const totals: RollupDelta[] = [];
      for (const [id, d] of deltas) {
        const inc: Record<string, number> = {
          count: d.count, errors: d.errors, latencySum: d.latencySum, cacheHits: d.cacheHits,
          cacheMisses: d.cacheMisses, rateLimited: d.rateLimited,
        };
        for (const [b, n] of Object.entries(d.histogram)) inc[`h.${b}`] = n;
        const max: Record<string, unknown> = { lastAt: d.lastAt };
        for (const [i, r] of Object.entries(d.users)) max[`u.${i}`] = r;
        const wave = d.dim !== "total" ? 0 : d.tenant === ALL_TENANTS ? 2 : 1;
        waves[wave].push({
          filter: { _id: id },
          update: { $setOnInsert: { dim: d.dim, tenant: d.tenant, key: d.key, minute: d.minute }, $inc: inc, $max: max },
        });
        if (d.dim === "total") totals.push(d);
      }
      for (const ops of waves) if (ops.length > 0) await rollups.bulkUpsert(ops);
      await applyHours(totals);
    },

    /**
     * The `total` rollups covering [from, to) for these tenants: hour
     * documents for the whole hours inside it when `hourly` (each unpacked
     * into a rollup whose `minute` is the hour's start), minute documents for
     * the rest. Unordered.
     */
    async totals(tenants: TenantSet, from: Date, to: Date, opts: { hourly: boolean }): Promise<RollupDoc[]> {
      const list = tenants === "all" ? [ALL_TENANTS] : [...new Set(tenants)];
      const start = from.getTime();
      const end = to.getTime();
      const firstHour = Math.ceil(start / HOUR) * HOUR;
      const lastHour = Math.floor(end / HOUR) * HOUR;
      const whole = opts.hourly && firstHour < lastHour;
      const minutes = whole ? [...minutesIn(start, firstHour), ...minutesIn(lastHour, end)] : minutesIn(start, end);
      const minuteIds = list.flatMap((t) => minutes.map((m) => rollupId("total", t, "", new Date(m))));
      const hourIds: string[] = [];
      if (whole) for (const t of list) for (let h = firstHour; h < lastHour; h += HOUR) hourIds.push(hourId(t, new Date(h)));
      const [byMinute, byHour] = await Promise.all([byIds(rollups, minuteIds), byIds(hours, hourIds)]);
      return [...byHour.map(unpackHour), ...byMinute];
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

    /** Forgets rollups of minutes before `before`, and hours that ended by then. */
    async deleteOlderThan(before: Date): Promise<number> {
      const n = await rollups.deleteMany({ minute: { $lt: before } });
      return n + await hours.deleteMany({ hour: { $lte: new Date(before.getTime() - HOUR) } });
    },
  };
}

export type RollupStore = ReturnType<typeof createRollupStore>;

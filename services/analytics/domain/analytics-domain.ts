import { createViolations } from "../../../lib/errors.js";
import type { Caller } from "../../../lib/identity.js";
import { readScopeOf, type ProjectDirectory } from "../../../lib/project-directory.js";
import type { RollupDoc, RollupStore, TenantSet } from "../storage/rollups.js";
import { mergeHistogram, percentiles, type Histogram } from "./histogram.js";
import { estimate, mergeSketch, type Sketch } from "./hll.js";
import { bucketStart, bucketStarts, intervalOf, limitOf, windowOf } from "./windows.js";

export interface AnalyticsDeps {
  readonly rollups: RollupStore;
  readonly directory: ProjectDirectory;
  readonly now: () => Date;
}

/** Common request fields of every analytics RPC. */
export interface WindowInput {
  from?: Date | undefined;
  to?: Date | undefined;
  projectId: string;
}

/** Totals merged from rollups. */
export interface Totals {
  count: number;
  errors: number;
  latencySum: number;
  cacheHits: number;
  cacheMisses: number;
  rateLimited: number;
  histogram: Histogram;
  users: Sketch;
}

export function emptyTotals(): Totals {
  return { count: 0, errors: 0, latencySum: 0, cacheHits: 0, cacheMisses: 0, rateLimited: 0, histogram: {}, users: {} };
}

export function addRollup(t: Totals, d: RollupDoc): Totals {
  t.count += d.count;
  t.errors += d.errors;
  t.latencySum += d.latencySum;
  t.cacheHits += d.cacheHits;
  t.cacheMisses += d.cacheMisses;
  t.rateLimited += d.rateLimited;
  mergeHistogram(t.histogram, d.h);
  mergeSketch(t.users, d.u);
  return t;
}

/** Error rate as a percentage (0..100), 0 without requests. */
export const errorRate = (errors: number, count: number) => (count > 0 ? (errors / count) * 100 : 0);

/**
 * The tenants a caller may read, narrowed to `projectId` when given (a
 * project outside the scope matches nothing rather than failing).
 */
export async function tenantsFor(caller: Caller, directory: ProjectDirectory, projectId: string): Promise<TenantSet> {
  const scope = await readScopeOf(caller, directory);
  if (scope.all) return projectId ? [projectId] : "all";
  const tenants = [...scope.projectIds, ...(scope.userId ? [`user:${scope.userId}`] : [])];
  return projectId ? tenants.filter((t) => t === projectId) : tenants;
}

/** Traffic, error and latency figures answered from hour and minute rollups, never from raw logs. */
export function createAnalyticsDomain(deps: AnalyticsDeps) {
  const { rollups, now } = deps;

  async function prepare(caller: Caller, input: WindowInput, v = createViolations()) {
    const window = windowOf(v, input.from, input.to, now());
    v.throwIfAny();
    return { window, tenants: await tenantsFor(caller, deps.directory, input.projectId) };
  }

  async function totals(caller: Caller, input: WindowInput): Promise<Totals> {
    const { window, tenants } = await prepare(caller, input);
    const docs = await rollups.totals(tenants, window.from, window.to, { hourly: true });
    return docs.reduce(addRollup, emptyTotals());
  }

  async function series(caller: Caller, input: WindowInput & { interval: string }) {
    const v = createViolations();
    const interval = intervalOf(v, input.interval);
    const { window, tenants } = await prepare(caller, input, v);
    const starts = bucketStarts(v, window.from, window.to, interval);
    v.throwIfAny();
    const buckets = new Map(starts.map((s) => [s, { count: 0, errors: 0 }]));
    // Hour documents fall inside one hour or day bucket; minute buckets read minutes only.
    for (const d of await rollups.totals(tenants, window.from, window.to, { hourly: interval !== "minute" })) {
      const b = buckets.get(bucketStart(d.minute, interval));
      if (b) { b.count += d.count; b.errors += d.errors; }
    }
    return [...buckets].map(([start, b]) => ({ start: new Date(start), ...b }));
  }

  return {
    async summary(caller: Caller, input: WindowInput) {
      const t = await totals(caller, input);
      const [p50, p95, p99] = percentiles(t.histogram, [0.5, 0.95, 0.99]);
      const cacheable = t.cacheHits + t.cacheMisses;
      return {
        totalRequests: t.count, totalErrors: t.errors, errorRate: errorRate(t.errors, t.count),
        avgLatency: t.count > 0 ? t.latencySum / t.count : 0, p50Latency: p50!, p95Latency: p95!, p99Latency: p99!,
        uniqueUsers: estimate(t.users), cacheHitRatio: cacheable > 0 ? t.cacheHits / cacheable : 0, rateLimited: t.rateLimited,
      };
    },

    async requestsOverTime(caller: Caller, input: WindowInput & { interval: string }) {
      return (await series(caller, input)).map(({ start, count }) => ({ start, count }));
    },

    async errorRateOverTime(caller: Caller, input: WindowInput & { interval: string }) {
      const buckets = await series(caller, input);
      const count = buckets.reduce((s, b) => s + b.count, 0);
      const errors = buckets.reduce((s, b) => s + b.errors, 0);
      return { errorRate: errorRate(errors, count), buckets: buckets.map((b) => ({ ...b, errorRate: errorRate(b.errors, b.count) })) };
    },

    async latency(caller: Caller, input: WindowInput) {
      const t = await totals(caller, input);
      const [p50, p95, p99] = percentiles(t.histogram, [0.5, 0.95, 0.99]);
      return { p50: p50!, p95: p95!, p99: p99!, avg: t.count > 0 ? t.latencySum / t.count : 0 };
    },

    async topEndpoints(caller: Caller, input: WindowInput & { limit: number }) {
      const v = createViolations();
      const limit = limitOf(v, input.limit);
      const { window, tenants } = await prepare(caller, input, v);
      const top = await rollups.top({ dim: "endpoint", tenants, ...window }, limit);
      return top.map((t) => {
        const space = t.key.indexOf(" ");
        return {
          method: t.key.slice(0, space), path: t.key.slice(space + 1), count: t.count, errorRate: errorRate(t.errors, t.count),
          p95Latency: percentiles(t.histogram, [0.95])[0]!, avgLatency: t.count > 0 ? t.latencySum / t.count : 0,
        };
      });
    },

    async topUsers(caller: Caller, input: WindowInput & { limit: number }) {
      const v = createViolations();
      const limit = limitOf(v, input.limit);
      const { window, tenants } = await prepare(caller, input, v);
      const top = await rollups.top({ dim: "user", tenants, ...window }, limit);
      return top.map((t) => ({ userId: t.key, count: t.count, errorRate: errorRate(t.errors, t.count) }));
    },

    async apiKeyUsage(caller: Caller, input: WindowInput & { limit: number }) {
      const v = createViolations();
      const limit = limitOf(v, input.limit);
      const { window, tenants } = await prepare(caller, input, v);
      const top = await rollups.top({ dim: "key", tenants, ...window }, limit);
      return top.map((t) => ({ apiKeyId: t.key, projectId: t.tenant, count: t.count, errors: t.errors, lastUsedAt: t.lastAt }));
    },
  };
}

export type AnalyticsDomain = ReturnType<typeof createAnalyticsDomain>;

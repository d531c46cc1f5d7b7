import type { LogEntry } from "../../../lib/request-log.js";
import { bucketOf } from "./histogram.js";
import { addToSketch, type Sketch } from "./hll.js";

/**
 * Rollup dimensions, each kept per minute and per tenant: the tenant's
 * total, and by service, by endpoint (method and route template), by user and
 * by API key.
 */
export type Dimension = "total" | "service" | "endpoint" | "user" | "key";

/** What one rollup document adds up for its (dimension, tenant, key, minute). */
export interface RollupDelta {
  readonly dim: Dimension;
  readonly tenant: string;
  readonly key: string;
  readonly minute: Date;
  count: number;
  errors: number;
  latencySum: number;
  cacheHits: number;
  cacheMisses: number;
  rateLimited: number;
  histogram: Record<string, number>;
  /** Distinct users (total dimension only). */
  users: Sketch;
  /** Latest request time (for API-key last use). */
  lastAt: Date;
}

/**
 * The tenant a record counts for: its project, else the user who made it
 * (`user:<id>`), else "anonymous". Reads are scoped to tenants.
 */
export function tenantOf(e: Pick<LogEntry, "projectId" | "userId">): string {
  return e.projectId || (e.userId ? `user:${e.userId}` : "anonymous");
}

/** Endpoint key: method and route template ("(unmatched)" when no route matched, to bound cardinality). */
export function endpointKey(e: Pick<LogEntry, "method" | "route">): string {
  return `${e.method} ${e.route || "(unmatched)"}`;
}

/**
 * The tenant under which the `total` dimension also adds up every tenant's
 * traffic, so an all-tenant read (an admin's) reads one tenant's documents.
 */
export const ALL_TENANTS = "*";

const MINUTE = 60_000;

/** Adds records into per-minute deltas, keyed by rollup document id. */
export function rollUp(entries: readonly LogEntry[], into = new Map<string, RollupDelta>()): Map<string, RollupDelta> {
  for (const e of entries) {
    const tenant = tenantOf(e);
    const minute = new Date(Math.floor(e.timestamp.getTime() / MINUTE) * MINUTE);
    const keys: [Dimension, string, string][] = [
      ["total", tenant, ""], ["total", ALL_TENANTS, ""], ["service", tenant, e.upstreamService || "(gateway)"], ["endpoint", tenant, endpointKey(e)],
    ];
    if (e.userId) keys.push(["user", tenant, e.userId]);
    if (e.apiKeyId) keys.push(["key", tenant, e.apiKeyId]);
    for (const [dim, tenant, key] of keys) {
      const id = rollupId(dim, tenant, key, minute);
      let d = into.get(id);
      if (!d) {
        d = { dim, tenant, key, minute, count: 0, errors: 0, latencySum: 0, cacheHits: 0, cacheMisses: 0, rateLimited: 0, histogram: {}, users: {}, lastAt: e.timestamp };
        into.set(id, d);
      }
      d.count++;
      if (e.statusCode >= 500) d.errors++;
      d.latencySum += e.latency;
      if (e.cacheStatus === "HIT") d.cacheHits++;
      if (e.cacheStatus === "MISS") d.cacheMisses++;
      if (e.rateLimited) d.rateLimited++;
      const b = bucketOf(e.latency);
      d.histogram[b] = (d.histogram[b] ?? 0) + 1;
      if (dim === "total" && e.userId) addToSketch(d.users, e.userId);
      if (e.timestamp > d.lastAt) d.lastAt = e.timestamp;
    }
  }
  return into;
}

/** Document id of a rollup. */
export function rollupId(dim: Dimension, tenant: string, key: string, minute: Date): string {
  return `${dim}|${tenant}|${key}|${minute.toISOString()}`;
}

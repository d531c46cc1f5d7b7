/**
 * The gateway's shared state port (DESIGN.md "State"): what several gateway
 * instances keep in one Redis — rate-limit buckets, the response cache and
 * the API-key verdict cache. Two adapters implement it and pass one contract
 * suite (contract.ts): `redis.ts` (ioredis) and `embedded.ts` (in-process,
 * the default when REDIS_URL is unset; state is then per instance).
 *
 * Every method throws ConnectError: UNAVAILABLE promptly (within the command
 * timeout, never hanging) when the server is down or slow, INVALID_ARGUMENT
 * for arguments outside the documented ranges, INTERNAL otherwise. The caller
 * decides what an UNAVAILABLE means (the rate-limit filter fails open or
 * closed by its config; the cache filters treat it as a miss).
 */

/** One rate-limit decision request. See gcra.ts for the algorithm and what the answer means. */
export interface RateLimitRequest {
  /** The bucket, e.g. `"<route>:<api key id>"`. */
  readonly key: string;
  /** Requests allowed per period, and the burst size (a positive integer). */
  readonly limit: number;
  /** The period in ms (a positive integer); one request's worth refills every `periodMs / limit`. */
  readonly periodMs: number;
  /** What this request costs, an integer from 0 to `limit`; default 1. Cost 0 reads the bucket without consuming. */
  readonly cost?: number;
  /**
   * The decision instant in epoch ms. Leave it unset in production: the
   * Redis adapter then uses the server's clock (so instances with skewed
   * clocks agree) and the embedded one its own clock. Tests set it.
   */
  readonly now?: number;
}

export interface RateLimitDecision {
  readonly allowed: boolean;
  readonly limit: number;
  /** Further cost-1 requests that would be allowed right now (after this one, when allowed). */
  readonly remaining: number;
  /** Epoch ms when the bucket is full again, i.e. the whole `limit` is available. */
  readonly resetMs: number;
  /** When denied, ms until this request (at its cost) would be allowed; 0 when allowed. */
  readonly retryAfterMs: number;
}

/** A cached response body with when it was stored (epoch ms) and for how long. */
export interface CachedEntry {
  readonly value: Buffer;
  readonly storedAt: number;
  readonly ttlMs: number;
}

export interface GatewayState {
  readonly kind: "redis" | "embedded";

  /**
   * Decides one request atomically: allowed requests consume `cost` from the
   * bucket; a denied request consumes nothing. Exact under concurrency, across
   * instances sharing the server.
   */
  rateLimit(req: RateLimitRequest): Promise<RateLimitDecision>;

  /** The live entry under `key`, or undefined when absent, expired or invalidated. */
  cacheGet(key: string): Promise<CachedEntry | undefined>;
  /**
   * Stores (or replaces) the entry under `key` for `ttlMs` (a positive
   * integer), tagged with `tags` (e.g. `"caller:resource-prefix"`). A
   * replaced entry loses its old tags.
   */
  cacheSet(key: string, value: Buffer, ttlMs: number, tags: readonly string[]): Promise<void>;
  /** Drops every live entry tagged `tag`; answers how many were dropped. */
  cacheInvalidate(tag: string): Promise<number>;

  /** The verdict under `key` (an API-key verification result), or undefined. */
  verdictGet(key: string): Promise<string | undefined>;
  /** Stores the verdict for `ttlMs` (a positive integer). */
  verdictSet(key: string, value: string, ttlMs: number): Promise<void>;
  /** Drops the verdicts under `keys` (absent ones are ignored). */
  verdictDelete(keys: readonly string[]): Promise<void>;

  /** Resolves when the state answers; throws UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

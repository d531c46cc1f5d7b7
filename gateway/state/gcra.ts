import { invalidArgument as invalid, isIntIn, MAX_SPAN_MS } from "./args.js";
import type { RateLimitDecision, RateLimitRequest } from "./port.js";

/**
 * GCRA, the generic cell rate algorithm (ITU-T I.371; the "leaky bucket as a
 * meter"), as both adapters run it: redis.ts in one Lua script, embedded.ts
 * in `gcraStep` below. The arithmetic is the same, in integer microseconds,
 * so the two answer identically.
 *
 * - The emission interval I = periodMs / limit (rounded to whole µs, at least
 *   1): one request's worth refills every I. The burst capacity C = I × limit,
 *   so a full bucket admits exactly `limit` back-to-back requests (C, not
 *   periodMs, bounds the burst, so rounding I never admits limit + 1).
 * - A bucket is ONE number, its theoretical arrival time TAT: the instant at
 *   which it will be full again. Absent (or in the past) means full: TAT = now.
 * - A request of cost c would move TAT to TAT' = max(TAT, now) + c × I. It is
 *   allowed when TAT' − C ≤ now, and then TAT' is stored with an expiry of
 *   TAT' − now (after which the bucket is full, as if absent). Otherwise it is
 *   denied and nothing changes: a denied request consumes nothing.
 *
 * What the answer means (and so the RateLimit-* / Retry-After headers):
 * - `remaining` = ⌊(C − (TAT − now)) / I⌋, with TAT after this decision: how
 *   many cost-1 requests would be allowed right now. There is no window: it
 *   grows by one every I as the bucket refills, up to `limit`.
 * - `resetMs` = TAT: the epoch ms at which the whole `limit` is available
 *   again (not a window boundary). RateLimit-Reset = ⌈(resetMs − now) / 1000⌉ s.
 * - `retryAfterMs` (denied only) = TAT' − C − now: the wait until this
 *   request, at its cost, would be allowed. Retry-After = ⌈retryAfterMs / 1000⌉ s.
 */
export interface GcraParams {
  readonly limit: number;
  /** Emission interval I, µs. */
  readonly intervalUs: number;
  /** Burst capacity C = I × limit, µs. */
  readonly capacityUs: number;
  /** c × I, µs. */
  readonly costUs: number;
}

/** One decision's outcome: the bucket's TAT after it (µs) and the decision instant (µs). */
export interface GcraStep {
  readonly allowed: boolean;
  readonly tatUs: number;
  readonly nowUs: number;
  /** Wait until allowed, µs; 0 when allowed. */
  readonly retryUs: number;
}

const MAX_LIMIT = 1_000_000_000;

/** The GCRA parameters of `req`; throws INVALID_ARGUMENT for a limit, period or cost out of range. */
export function gcraParams(req: RateLimitRequest): GcraParams {
  const cost = req.cost ?? 1;
  if (!isIntIn(req.limit, 1, MAX_LIMIT)) throw invalid(`rate limit must be an integer from 1 to ${MAX_LIMIT}`);
  if (!isIntIn(req.periodMs, 1, MAX_SPAN_MS)) throw invalid(`rate-limit period must be an integer from 1 to ${MAX_SPAN_MS} ms`);
  if (!isIntIn(cost, 0, req.limit)) throw invalid("rate-limit cost must be an integer from 0 to the limit");
  if (req.key.length === 0) throw invalid("rate-limit key must not be empty");
  if (req.now !== undefined && !Number.isFinite(req.now)) throw invalid("rate-limit now must be a finite epoch ms");
  const intervalUs = Math.max(1, Math.round((req.periodMs * 1000) / req.limit));
  return { limit: req.limit, intervalUs, capacityUs: intervalUs * req.limit, costUs: intervalUs * cost };
}

/** One decision on a bucket whose stored TAT is `storedTatUs` (undefined when absent). */
export function gcraStep(storedTatUs: number | undefined, nowUs: number, p: GcraParams): GcraStep {
  const tat = Math.max(storedTatUs ?? nowUs, nowUs);
  const next = tat + p.costUs;
  const allowAt = next - p.capacityUs;
  if (nowUs < allowAt) return { allowed: false, tatUs: tat, nowUs, retryUs: allowAt - nowUs };
  return { allowed: true, tatUs: next, nowUs, retryUs: 0 };
}

/** The port's answer for a step (both adapters). */
export function toDecision(p: GcraParams, s: GcraStep): RateLimitDecision {
  return {
    allowed: s.allowed,
    limit: p.limit,
    remaining: Math.max(0, Math.floor((p.capacityUs - (s.tatUs - s.nowUs)) / p.intervalUs)),
    resetMs: Math.ceil(s.tatUs / 1000),
    retryAfterMs: Math.ceil(s.retryUs / 1000),
  };
}

/** An epoch-ms instant as whole µs. */
export const toMicros = (ms: number): number => Math.floor(ms * 1000);

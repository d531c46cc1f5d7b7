import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { RateLimitFailureMode } from "../../gen/mesh/gateway/v1/config_pb.js";
import type { FilterConfig } from "../config/resolved-config.js";
import { createEmbeddedState } from "../state/embedded.js";
import type { GatewayState, RateLimitDecision } from "../state/port.js";

/** Whose budget a request spends: an API key's, a signed-in user's, or an anonymous client IP's. */
export interface RateSubject {
  readonly tier: "api_key" | "user" | "anonymous";
  readonly id: string;
}

export interface RateLimiter {
  /**
   * Spends `cost` from the subject's budget and answers the X-RateLimit-*
   * headers to send; throws RESOURCE_EXHAUSTED (429, with Retry-After in the
   * headers it sets on `responseHeaders`) when over it, or UNAVAILABLE when
   * the shared store is down and the mode is fail-closed.
   */
  admit(subject: RateSubject, cost: number, responseHeaders: Headers, override?: { limit: number; periodMs: number }): Promise<void>;
}

/**
 * Per-tier GCRA limits decided atomically in the shared gateway state (one
 * Redis script call per request, so N gateways together allow exactly the
 * limit). While the shared store is unreachable: FAIL_OPEN (default) decides
 * with a per-process embedded limiter (each gateway then allows up to the
 * limit on its own), FAIL_CLOSED refuses with UNAVAILABLE; either within the
 * store's command timeout. Headers: X-RateLimit-Limit, X-RateLimit-Remaining,
 * X-RateLimit-Reset (seconds until the full limit is available again), and
 * Retry-After (seconds) on 429.
 */
export function createRateLimiter(cfg: FilterConfig<"rateLimit">, state: GatewayState, logger: Logger): RateLimiter {
  const tiers = {
    api_key: { limit: cfg.apiKey.limit, periodMs: durationMs(cfg.apiKey.period) },
    user: { limit: cfg.user.limit, periodMs: durationMs(cfg.user.period) },
    anonymous: { limit: cfg.anonymous.limit, periodMs: durationMs(cfg.anonymous.period) },
  };
  const local = createEmbeddedState();
  const failClosed = cfg.failureMode === RateLimitFailureMode.FAIL_CLOSED;
  let degraded = false;

  async function decide(key: string, limit: number, periodMs: number, cost: number): Promise<RateLimitDecision> {
    try {
      const d = await state.rateLimit({ key, limit, periodMs, cost });
      if (degraded) logger.info("rate limiting is shared again");
      degraded = false;
      return d;
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unavailable) throw err;
      if (!degraded) logger.warn({ err, mode: failClosed ? "fail-closed" : "fail-open" }, "rate-limit store unavailable");
      degraded = true;
      if (failClosed) throw new ConnectError("rate limiting is unavailable", Code.Unavailable, undefined, undefined, err);
      return local.rateLimit({ key, limit, periodMs, cost });
    }
  }

  return {
    async admit(subject, cost, headers, override) {
      const tier = override ?? tiers[subject.tier];
      const limit = tier.limit;
      const d = await decide(`rl:${subject.tier}:${subject.id}:${limit}/${tier.periodMs}`, limit, tier.periodMs, Math.min(cost, limit));
      const nowMs = Date.now();
      headers.set("x-ratelimit-limit", String(d.limit));
      headers.set("x-ratelimit-remaining", String(d.remaining));
      headers.set("x-ratelimit-reset", String(Math.max(0, Math.ceil((d.resetMs - nowMs) / 1000))));
      if (d.allowed) return;
      const retrySeconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
      headers.set("retry-after", String(retrySeconds));
      throw new ConnectError(`rate limit of ${d.limit} requests per ${Math.round(tier.periodMs / 1000)} s exceeded; retry in ${retrySeconds} s`,
        Code.ResourceExhausted, undefined, [{ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: { seconds: BigInt(retrySeconds) } }) }]);
    },
  };
}

import { setTimeout as sleep } from "node:timers/promises";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { methodPolicy } from "../../lib/policy.js";

/** The router's RetryPolicy (config.proto), in milliseconds. */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 disables retries (config default 3). */
  readonly attempts: number;
  /** First backoff ceiling (config default 25 ms). */
  readonly backoffBaseMs: number;
  /** Largest backoff ceiling, at least `backoffBaseMs` (config default 250 ms). */
  readonly backoffMaxMs: number;
  /** Retries in flight at most, in percent of the cluster's calls in flight and pending (config default 20). */
  readonly budgetPercent: number;
  /** Retries in flight always allowed, whatever the percentage; default 3 (Envoy's `min_retry_concurrency`). */
  readonly minRetryConcurrency?: number;
}

export interface RetryBudget {
  /** Takes a retry slot if the budget allows one now; every `true` must be paired with one `release`. */
  tryAcquire(): boolean;
  release(): void;
  /** Retries in flight (waiting out their backoff or running). */
  active(): number;
  /** Retries refused by the budget so far. */
  exhausted(): number;
}

/**
 * Envoy's retry budget: retries in flight may be at most `budgetPercent` % of
 * the calls in flight and pending (`load()`), but never fewer than
 * `minRetryConcurrency`, so a quiet cluster can still retry while a
 * struggling busy one is not hit with a storm of them.
 */
export function createRetryBudget(policy: RetryPolicy, load: () => number): RetryBudget {
  const min = policy.minRetryConcurrency ?? 3;
  let active = 0;
  let exhausted = 0;
  return {
    tryAcquire() {
      if (active >= Math.max(min, (load() * policy.budgetPercent) / 100)) {
        exhausted++;
        return false;
      }
      active++;
      return true;
    },
    release: () => void active--,
    active: () => active,
    exhausted: () => exhausted,
  };
}

/** Answers of `isRetryable`, which reads (decodes) the method's options: once per method, not per call. */
const retryableMethods = new WeakMap<DescMethod, boolean>();

/** Whether the router may retry calls of `method`: unary, and declared `idempotent` in its `(mesh.gateway.v1.policy)`. */
export function isRetryable(method: DescMethod): boolean {
  let answer = retryableMethods.get(method);
  if (answer === undefined) {
    answer = method.methodKind === "unary" && methodPolicy(method).idempotent;
    retryableMethods.set(method, answer);
  }
  return answer;
}

/**
 * The wait before retry number `retry` (1 = the first retry): "full jitter",
 * a uniform draw below the exponential ceiling `min(max, base × 2^(retry-1))`
 * (Envoy's and gRPC's scheme; spreads retries of calls that failed together).
 */
export function backoffMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryOptions {
  readonly policy: RetryPolicy;
  readonly budget: RetryBudget;
  /** Epoch ms past which no attempt starts (and no backoff ends). */
  readonly deadlineAt: number;
  readonly signal?: AbortSignal;
  /** Whether a failure may be retried; default: code UNAVAILABLE. */
  readonly retryable?: (err: ConnectError) => boolean;
  /** Uniform [0, 1) for the jitter; default Math.random. */
  readonly random?: () => number;
  /** Told of each retry before its backoff (attempt = the number it will be, 2 for the first retry). */
  readonly onRetry?: (attempt: number, err: ConnectError) => void;
}

/**
 * Runs `attempt(1)`, and while it fails retryably (UNAVAILABLE), again as
 * `attempt(2)`, ... up to `policy.attempts` in all, after a jittered backoff
 * each time. The last failure is rethrown as is when the attempts are used
 * up, when the backoff would end past `deadlineAt`, or when the budget has no
 * room; CANCELED when `signal` aborts during a backoff. The caller decides
 * whether the call may be retried at all (`isRetryable`) and makes each
 * attempt pick an endpoint again.
 */
export async function callWithRetry<T>(attempt: (n: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const retryable = opts.retryable ?? ((e: ConnectError) => e.code === Code.Unavailable);
  for (let n = 1; ; n++) {
    let err: unknown;
    try {
      return await attempt(n);
    } catch (e) {
      err = e;
    } finally {
      if (n > 1) opts.budget.release(); // a retry holds its budget slot from its backoff to its end
    }
    const failure = ConnectError.from(err);
    if (n >= opts.policy.attempts || !retryable(failure)) throw err;
    const wait = backoffMs(n, opts.policy, opts.random);
    if (Date.now() + wait >= opts.deadlineAt || !opts.budget.tryAcquire()) throw err;
    opts.onRetry?.(n + 1, failure);
    try {
      await sleep(wait, undefined, { signal: opts.signal });
    } catch (e) {
      opts.budget.release();
      throw ConnectError.from(opts.signal?.reason ?? e, Code.Canceled);
    }
  }
}

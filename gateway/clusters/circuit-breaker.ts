import { Code, ConnectError } from "@connectrpc/connect";

export interface CircuitBreakerOptions {
  /** The cluster's name, for error messages. */
  readonly name: string;
  /** Calls in flight at once, at least 1. */
  readonly maxConcurrent: number;
  /** Calls waiting for a slot; 0 refuses at once when all slots are taken. */
  readonly maxPending: number;
}

export interface CircuitBreaker {
  /**
   * Takes a slot: at once when one is free and nobody waits, else after the
   * calls queued before it (FIFO). Throws UNAVAILABLE when the queue is full
   * (counted in `overflows`), DEADLINE_EXCEEDED when `deadlineAt` (epoch ms;
   * Infinity = none) passes in the queue, CANCELED when `signal` aborts.
   * Every successful acquire must be paired with one `release`.
   */
  acquire(signal: AbortSignal | undefined, deadlineAt: number): Promise<void>;
  /** Frees a slot, handing it to the oldest waiting call if any. */
  release(): void;
  inFlight(): number;
  pending(): number;
  /** Calls refused because every slot and every queue place was taken. */
  overflows(): number;
  /** Calls whose deadline passed while they waited. */
  pendingTimeouts(): number;
}

interface Waiter {
  admit(): void;
}

/**
 * Envoy's `max_requests` + `max_pending_requests` circuit breaker for one
 * cluster: up to `maxConcurrent` calls run, up to `maxPending` more wait in
 * arrival order, and the rest fail fast with UNAVAILABLE, so an overloaded
 * upstream sheds load instead of queuing it without bound.
 */
export function createCircuitBreaker(opts: CircuitBreakerOptions): CircuitBreaker {
  let inFlight = 0;
  let overflows = 0;
  let pendingTimeouts = 0;
  const queue: Waiter[] = [];

  function wait(signal: AbortSignal | undefined, deadlineAt: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const leave = (err: ConnectError) => {
        queue.splice(queue.indexOf(waiter), 1);
        done();
        reject(err);
      };
      const onAbort = () => leave(ConnectError.from(signal!.reason, Code.Canceled));
      const timer = Number.isFinite(deadlineAt)
        ? setTimeout(() => {
          pendingTimeouts++;
          leave(new ConnectError(`deadline exceeded waiting for a free slot in cluster ${opts.name}`, Code.DeadlineExceeded));
        }, Math.max(0, deadlineAt - Date.now()))
        : undefined;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter: Waiter = { admit: () => { done(); resolve(); } };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
    });
  }

  return {
    async acquire(signal, deadlineAt) {
      if (signal?.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
      if (inFlight < opts.maxConcurrent && queue.length === 0) {
        inFlight++;
        return;
      }
      if (queue.length >= opts.maxPending) {
        overflows++;
        throw new ConnectError(
          `cluster ${opts.name} is at its limit of ${opts.maxConcurrent} concurrent and ${opts.maxPending} pending calls`, Code.Unavailable);
      }
      // The slot is handed over by `release`, so `inFlight` is already counted on resolve.
      return wait(signal, deadlineAt);
    },
    release() {
      const next = queue.shift();
      if (next) return next.admit();
      inFlight--;
    },
    inFlight: () => inFlight,
    pending: () => queue.length,
    overflows: () => overflows,
    pendingTimeouts: () => pendingTimeouts,
  };
}

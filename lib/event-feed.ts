import { setTimeout as sleep } from "node:timers/promises";

/** Wakes waiting feed readers at once after a local write, instead of at their next poll. */
export interface Notifier {
  notify(): void;
  /** Resolves at the next `notify`, or after `ms`, or when `signal` aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void>;
}

export function createNotifier(): Notifier {
  let waiters: (() => void)[] = [];
  return {
    notify() {
      const woken = waiters;
      waiters = [];
      for (const wake of woken) wake();
    },
    async wait(ms, signal) {
      const ctrl = new AbortController();
      const onAbort = () => ctrl.abort();
      signal.addEventListener("abort", onAbort, { once: true });
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => { wake = resolve; });
      waiters.push(wake);
      await Promise.race([woken, sleep(ms, undefined, { signal: ctrl.signal }).catch(() => undefined)]);
      ctrl.abort();
      signal.removeEventListener("abort", onAbort);
      waiters = waiters.filter((w) => w !== wake);
    },
  };
}

export interface FeedOptions<T> {
  /** Deliver entries with a version greater than this. */
  readonly after: bigint;
  /** Entries with version > `after`, ascending, at most `limit`. */
  read(after: bigint, limit: number): Promise<T[]>;
  readonly versionOf: (entry: T) => bigint;
  readonly signal: AbortSignal;
  /** Poll period; other replicas' writes are seen within it. Default 200 ms. */
  readonly intervalMs?: number;
  /** Local writes wake the reader at once. */
  readonly notifier?: Notifier;
}

/**
 * Follows an append-only, versioned log stored in the database (revocations,
 * key events, route changes): yields every entry after `after`, then each new
 * one, until `signal` aborts. Polling the store (rather than relying on an
 * in-process channel) makes replicas see each other's writes, and resuming
 * from the last seen version loses nothing.
 */
export async function* followFeed<T>(opts: FeedOptions<T>): AsyncGenerator<T> {
  let after = opts.after;
  const interval = opts.intervalMs ?? 200;
  while (!opts.signal.aborted) {
    const batch = await opts.read(after, 500);
    for (const entry of batch) {
      after = opts.versionOf(entry);
      yield entry;
    }
    if (batch.length === 500) continue;
    if (opts.notifier) await opts.notifier.wait(interval, opts.signal);
    else await sleep(interval, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}

import type { Logger } from "pino";

export interface WatchOptions<M> {
  /** For logs: what is being followed. */
  readonly name: string;
  /** Opens the stream after `version` (0n: from the start the server defines). */
  readonly open: (after: bigint, signal: AbortSignal) => AsyncIterable<M>;
  /** The version a message brings the watcher to (undefined: unchanged). */
  readonly versionOf: (m: M) => bigint | undefined;
  readonly apply: (m: M) => void | Promise<void>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** First retry delay; doubles up to `maxBackoffMs`. Defaults 100 ms and 5 s. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/**
 * Follows a server stream of versioned events for as long as `signal` is not
 * aborted: applies each message, remembers the last version, and when the
 * stream breaks (the service restarts, the network drops) reopens it after
 * that version with capped exponential backoff, so nothing is missed and the
 * state built so far keeps serving meanwhile.
 */
export async function watch<M>(opts: WatchOptions<M>): Promise<void> {
  const min = opts.minBackoffMs ?? 100;
  const max = opts.maxBackoffMs ?? 5_000;
  let after = 0n;
  let backoff = min;
  let broken = false;
  while (!opts.signal.aborted) {
    try {
      for await (const m of opts.open(after, opts.signal)) {
        if (broken) opts.logger.info({ watch: opts.name }, "watch resumed");
        broken = false;
        backoff = min;
        await opts.apply(m);
        after = opts.versionOf(m) ?? after;
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      if (!broken) opts.logger.warn({ err, watch: opts.name }, "watch broke; resuming with backoff");
      broken = true;
    }
    await new Promise<void>((resolve) => {
      const done = () => { clearTimeout(t); opts.signal.removeEventListener("abort", done); resolve(); }; // no listener left per retry
      const t = setTimeout(done, backoff);
      opts.signal.addEventListener("abort", done, { once: true });
    });
    backoff = Math.min(backoff * 2, max);
  }
}

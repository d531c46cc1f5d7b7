import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Notifier } from "../../../lib/event-feed.js";
import type { LogEntry, LogStore } from "../storage/port.js";

export interface TailHubOptions {
  readonly store: LogStore;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Poll period while anyone is subscribed; default 200 ms. */
  readonly pollMs?: number;
  /** Local ingests wake the poller at once. */
  readonly notifier: Notifier;
  /**
   * Records become visible to this poller up to this long after their
   * ingest time (another replica's clock, a slow insert) and still reach
   * subscribers; default 3 s.
   */
  readonly overlapMs?: number;
  /** Records buffered for one slow subscriber before its stream fails; default 10 000. */
  readonly maxBuffered?: number;
}

const PAGE = 5_000;

interface Subscriber {
  readonly since: number;
  readonly accepts: (e: LogEntry) => boolean;
  readonly queue: LogEntry[];
  wake?: () => void;
  failed?: ConnectError;
}

/**
 * Fan-out of newly ingested records to TailLogs streams, across replicas
 * without change streams (FerretDB has none): one poller per process reads
 * what any replica stored, by ingest time with an overlap window and a set
 * of recently delivered request IDs, and hands each new record to every
 * subscriber whose filter accepts it. The poller runs only while someone is
 * subscribed.
 */
export function createTailHub(opts: TailHubOptions) {
  const pollMs = opts.pollMs ?? 200;
  const overlapMs = opts.overlapMs ?? 3_000;
  const maxBuffered = opts.maxBuffered ?? 10_000;
  const subscribers = new Set<Subscriber>();
  const delivered = new Map<string, number>();
  let cursor = 0;
  let running: Promise<void> | undefined;

  // Reads everything ingested since the overlap window before the newest
  // record seen, page by page in (ingest time, request ID) order, so a burst
  // larger than one page is read in full and the cursor always advances.
  async function pollOnce(): Promise<void> {
    let position = { ingestedAt: new Date(Math.max(0, cursor - overlapMs)), requestId: "" };
    const until = new Date(opts.now().getTime() + overlapMs);
    for (;;) {
      const page = await opts.store.readAfter(position, until, PAGE);
      for (const entry of page) deliver(entry);
      const last = page[page.length - 1];
      if (!last || page.length < PAGE) break;
      position = { ingestedAt: last.ingestedAt, requestId: last.requestId };
    }
    for (const [id, at] of delivered) if (at < cursor - 2 * overlapMs) delivered.delete(id);
  }

  function deliver(entry: LogEntry): void {
    const at = entry.ingestedAt.getTime();
    cursor = Math.max(cursor, at);
    if (delivered.has(entry.requestId)) return;
    delivered.set(entry.requestId, at);
    for (const s of subscribers) {
      if (at < s.since || !s.accepts(entry)) continue;
      if (s.queue.length >= maxBuffered) s.failed ??= new ConnectError("tail subscriber too slow; records dropped", Code.ResourceExhausted);
      else s.queue.push(entry);
      s.wake?.();
    }
  }

  async function loop(): Promise<void> {
    const stop = new AbortController();
    while (subscribers.size > 0) {
      await pollOnce().catch((err: unknown) => opts.logger.warn({ err }, "tail poll failed; retrying"));
      await opts.notifier.wait(pollMs, stop.signal);
    }
    running = undefined;
  }

  return {
    /**
     * Records ingested from now on that `accepts` admits, until `signal`
     * aborts. Fails with RESOURCE_EXHAUSTED when the consumer falls more than
     * `maxBuffered` records behind.
     */
    async *subscribe(accepts: (e: LogEntry) => boolean, signal: AbortSignal): AsyncGenerator<LogEntry> {
      const sub: Subscriber = { since: opts.now().getTime(), accepts, queue: [] };
      if (subscribers.size === 0) cursor = Math.max(cursor, sub.since);
      subscribers.add(sub);
      running ??= loop();
      const onAbort = () => sub.wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        while (!signal.aborted) {
          const next = sub.queue.shift();
          if (next) {
            yield next;
            continue;
          }
          if (sub.failed) throw sub.failed;
          await new Promise<void>((resolve) => { sub.wake = resolve; });
          sub.wake = undefined;
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
        subscribers.delete(sub);
      }
    },
    /** Number of open subscriptions (for stats and tests). */
    get subscribers(): number {
      return subscribers.size;
    },
  };
}

import type { Logger } from "pino";
import type { ProjectStore } from "../storage/port.js";

/**
 * Records API-key last use without a database write per request: a use is
 * noted in memory at most once a minute per key, and noted uses are written
 * together, in one statement, every `flushMs`.
 */
export function createUsageRecorder(opts: { store: ProjectStore; logger: Logger; flushMs?: number; minIntervalMs?: number }) {
  const minInterval = opts.minIntervalMs ?? 60_000;
  const lastNoted = new Map<string, number>();
  let pending = new Map<string, Date>();
  let timer: NodeJS.Timeout | undefined;

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    try {
      await opts.store.touchApiKeys(batch);
    } catch (err) {
      // Losing a last-used stamp is harmless; the next use notes it again.
      for (const id of batch.keys()) lastNoted.delete(id);
      opts.logger.warn({ err, keys: batch.size }, "could not record API key use");
    }
  }

  return {
    /** Notes that key `id` was used at `at`. */
    note(id: string, at: Date): void {
      const last = lastNoted.get(id);
      if (last !== undefined && at.getTime() - last < minInterval) return;
      lastNoted.set(id, at.getTime());
      pending.set(id, at);
      if (lastNoted.size > 100_000) lastNoted.clear();
    },
    flush,
    start(): void {
      timer = setInterval(() => void flush(), opts.flushMs ?? 5_000);
      timer.unref();
    },
    /** Stops the timer and writes what is pending. */
    async stop(): Promise<void> {
      clearInterval(timer);
      await flush();
    },
  };
}

export type UsageRecorder = ReturnType<typeof createUsageRecorder>;

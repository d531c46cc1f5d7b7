import type { AnalyticsState } from "../storage/state.js";
import type { LogCursor, LogSource } from "./log-source.js";
import type { RollupStore } from "../storage/rollups.js";
import { rollUp } from "./rollup.js";

export interface RollupWorkerOptions {
  readonly state: AnalyticsState;
  readonly source: LogSource;
  readonly rollups: RollupStore;
  /** Records read per round; default 5000. */
  readonly batch?: number;
}

/**
 * Folds new request records, read from the logging service in ingest order,
 * into per-minute rollups, from a cursor stored with the rollups. Run by the lease holder only. A crash
 * between writing a round's rollups and saving the cursor would count that
 * round twice; the window is one round-trip wide.
 */
export function createRollupWorker(opts: RollupWorkerOptions) {
  const batch = opts.batch ?? 5_000;
  return {
    /** Records read per round. */
    batch,
    /** One round; answers how many records it rolled up (a full batch means call again). */
    async runOnce(): Promise<number> {
      const cursor = await opts.state.cursor("rollup");
      const records = await opts.source.read(cursor, batch);
      if (records.length === 0) return 0;
      await opts.rollups.apply(rollUp(records));
      const last = records[records.length - 1]!;
      const next: LogCursor = { at: last.ingestedAt, id: last.requestId };
      await opts.state.saveCursor("rollup", next);
      return records.length;
    },
  };
}

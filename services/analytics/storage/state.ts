import type { Doc, DocumentDb } from "../../../lib/stores/documents.js";
import type { LogCursor } from "../domain/log-source.js";

export const STATE_COLLECTION = "analytics_state";

interface LeaseDoc extends Doc { owner: string; until: Date }
interface CursorDoc extends Doc { at: Date; id: string }

/**
 * Coordination state of the analytics replicas. One replica at a time holds the lease and does the
 * singleton work (rolling up, evaluating alerts), so each record is counted
 * once and each breach fires once.
 */
export function createAnalyticsState(db: DocumentDb) {
  const state = db.collection<LeaseDoc | CursorDoc>(STATE_COLLECTION);
  return {
    /**
     * Takes or renews the lease named `name` for `owner` until `until`;
     * false while another owner holds an unexpired one. Taking is an insert
     * against the lease's unique id (the one operation FerretDB makes atomic
     * across connections); an expired lease is first deleted by whoever
     * finds it expired, and only one of the racing inserts wins.
     */
    async acquire(name: string, owner: string, now: Date, until: Date): Promise<boolean> {
      const id = `lease:${name}`;
      const current = (await state.findOne({ _id: id })) as LeaseDoc | undefined;
      if (current && current.until > now) {
        if (current.owner !== owner) return false;
        return (await state.updateOne({ _id: id, owner }, { $set: { until } })).matched === 1;
      }
      if (current) await state.deleteMany({ _id: id, until: { $lte: now } });
      const { inserted } = await state.insertMany([{ _id: id, owner, until }]);
      return inserted === 1;
    },
    async release(name: string, owner: string): Promise<void> {
      await state.deleteMany({ _id: `lease:${name}`, owner });
    },
    async cursor(name: string): Promise<LogCursor | undefined> {
      const doc = (await state.findOne({ _id: `cursor:${name}` })) as CursorDoc | undefined;
      return doc && { at: doc.at, id: doc.id };
    },
    async saveCursor(name: string, cursor: LogCursor): Promise<void> {
      await state.updateOne({ _id: `cursor:${name}` }, { $set: { at: cursor.at, id: cursor.id } }, { upsert: true });
    },
  };
}

export type AnalyticsState = ReturnType<typeof createAnalyticsState>;

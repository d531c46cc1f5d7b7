import type { Doc, DocumentDb } from "../../../lib/stores/documents.js";
import type { LogCursor } from "../domain/log-source.js";

export const STATE_COLLECTION = "analytics_state";

interface LeaseDoc extends Doc { kind: "lease"; name: string; n: number; owner: string; until: Date }
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
     * false while another owner holds an unexpired one. A lease is a chain of
     * generations `lease:<name>:<n>`: taking an expired (or absent) lease
     * inserts the next generation, an insert against a unique id (the one
     * operation FerretDB makes atomic across connections), so exactly one of
     * the racing owners wins. The holder renews its own generation only
     * while at least half of it is left, so a renewal never revives a
     * generation someone may already have succeeded.
     */
    async acquire(name: string, owner: string, now: Date, until: Date): Promise<boolean> {
      const [latest] = (await state.find({ name, kind: "lease" }, { sort: { n: -1 }, limit: 1 })) as LeaseDoc[];
      if (latest && latest.until > now) {
        if (latest.owner !== owner) return false;
        const halfLeft = latest.until.getTime() - now.getTime() >= (until.getTime() - now.getTime()) / 2;
        if (halfLeft) return (await state.updateOne({ _id: latest._id, owner }, { $set: { until } })).matched === 1;
      }
      const n = (latest?.n ?? 0) + 1;
      const { inserted } = await state.insertMany([{ _id: `lease:${name}:${n}`, kind: "lease", name, n, owner, until }]);
      if (inserted === 1 && n > 3) await state.deleteMany({ name, kind: "lease", n: { $lt: n - 2 } });
      return inserted === 1;
    },
    /** Ends `owner`'s current generation at once, so another replica takes over without waiting. */
    async release(name: string, owner: string): Promise<void> {
      await state.updateMany({ name, kind: "lease", owner }, { $set: { until: new Date(0) } });
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

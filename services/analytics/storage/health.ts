import { randomUUID } from "node:crypto";
import type { Doc, DocumentDb, Filter } from "../../../lib/stores/documents.js";

export const HEALTH_COLLECTION = "health_checks";

/** One health check of one service: whether it answered SERVING at `at`. */
export interface HealthSample {
  readonly service: string;
  readonly at: Date;
  readonly ok: boolean;
}

type SampleDoc = Doc & HealthSample;

/**
 * Health check samples in a DocumentDb, the source of the `uptime` alert
 * metric. Every replica may record its own samples: uptime is a ratio, so
 * more samples only sharpen it. Methods throw what the DocumentDb port throws.
 */
export function createHealthStore(db: DocumentDb) {
  const samples = db.collection<SampleDoc>(HEALTH_COLLECTION);
  return {
    async prepare(): Promise<void> {
      await samples.ensureIndex({ service: 1, at: 1 }, { name: "by_service_at" });
      await samples.ensureIndex({ at: 1 }, { name: "by_at" });
    },

    async record(sample: HealthSample): Promise<void> {
      await samples.insertMany([{ _id: randomUUID(), service: sample.service, at: sample.at, ok: sample.ok }]);
    },

    /**
     * Percent (0..100) of the samples in [from, to) that were ok, for one
     * service or (undefined) every service; undefined when there are none.
     */
    async uptime(service: string | undefined, from: Date, to: Date): Promise<number | undefined> {
      const where: Filter = { at: { $gte: from, $lt: to } };
      if (service) where.service = service;
      const [total, ok] = await Promise.all([samples.count(where), samples.count({ ...where, ok: true })]);
      return total > 0 ? (ok / total) * 100 : undefined;
    },

    /** Forgets samples taken before `before`; answers how many. */
    deleteOlderThan: (before: Date) => samples.deleteMany({ at: { $lt: before } }),
  };
}

export type HealthStore = ReturnType<typeof createHealthStore>;

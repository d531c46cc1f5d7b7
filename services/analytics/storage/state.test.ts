import { randomUUID } from "node:crypto";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { DocumentDb } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { openDocumentDb } from "../../../lib/stores/open-documents.js";
import { describeWithServer, uniqueSchema } from "../../../test/support/integration.js";
import { createAnalyticsState, STATE_COLLECTION, type AnalyticsState } from "./state.js";

const T0 = Date.parse("2026-03-10T12:00:00Z");
const at = (seconds: number) => new Date(T0 + seconds * 1_000);
/** Races are repeated on fresh lease names, so a lost race shows up on every run rather than now and then. */
const ROUNDS = 10;

/**
 * The analytics state contract. `open` answers two states over the same
 * (emptied) collection, as two replicas see it: on a server, through two
 * separate DocumentDb instances (two connections).
 */
function analyticsStateContract(name: string, open: () => Promise<[AnalyticsState, AnalyticsState]>) {
  describe(`analytics state (${name})`, () => {
    let a: AnalyticsState;
    let b: AnalyticsState;
    // A fresh lease name per test, so nothing carries over.
    let lease: string;
    beforeEach(async () => {
      [a, b] = await open();
      lease = `rollup-${randomUUID()}`;
    });

    describe("lease", () => {
      it("grants a free lease", async () => {
        expect(await a.acquire(lease, "A", at(0), at(15))).toBe(true);
      });

      it("refuses another owner while the lease has not expired", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        expect(await b.acquire(lease, "B", at(1), at(16))).toBe(false);
        expect(await b.acquire(lease, "B", at(14.999), at(30))).toBe(false);
      });

      it("renews the holder's lease, pushing its expiry out", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        expect(await a.acquire(lease, "A", at(10), at(25))).toBe(true);
        expect(await b.acquire(lease, "B", at(20), at(35))).toBe(false);
      });

      it("lets another owner take the lease from its expiry on", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        expect(await b.acquire(lease, "B", at(15), at(30))).toBe(true);
      });

      it("refuses the former holder once another owner took its expired lease", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        await b.acquire(lease, "B", at(16), at(31));
        expect(await a.acquire(lease, "A", at(17), at(32))).toBe(false);
      });

      it("lets the holder take its own expired lease again", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        expect(await a.acquire(lease, "A", at(20), at(35))).toBe(true);
        expect(await b.acquire(lease, "B", at(30), at(45))).toBe(false);
      });

      it("frees the lease when its holder releases it", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        await a.release(lease, "A");
        expect(await b.acquire(lease, "B", at(1), at(16))).toBe(true);
      });

      it("ignores a release by an owner that does not hold the lease", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        await b.release(lease, "B");
        expect(await b.acquire(lease, "B", at(1), at(16))).toBe(false);
      });

      it("keeps leases of different names apart", async () => {
        await a.acquire(lease, "A", at(0), at(15));
        expect(await b.acquire(`${lease}-other`, "B", at(1), at(16))).toBe(true);
      });

      it("grants a free lease to exactly one of two owners racing with many concurrent calls", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const name = `${lease}-${round}`;
          const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0
            ? a.acquire(name, "A", at(0), at(15)).then((won) => ["A", won] as const)
            : b.acquire(name, "B", at(0), at(15)).then((won) => ["B", won] as const))));
          const winners = [...new Set(results.filter(([, won]) => won).map(([owner]) => owner))];
          expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
          const loser = winners[0] === "A" ? { state: b, owner: "B" } : { state: a, owner: "A" };
          expect(await loser.state.acquire(name, loser.owner, at(1), at(16))).toBe(false);
        }
      });

      it("grants a free lease to exactly one of many owners acquiring at once", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const name = `${lease}-${round}`;
          const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquire(name, `owner-${i}`, at(0), at(15))));
          expect({ round, winners: results.filter(Boolean).length }).toEqual({ round, winners: 1 });
        }
      });

      it("hands an expired lease to exactly one of many owners taking it at once", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const name = `${lease}-${round}`;
          await a.acquire(name, "old", at(0), at(15));
          const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquire(name, `owner-${i}`, at(20), at(35))));
          expect({ round, winners: results.filter(Boolean).length }).toEqual({ round, winners: 1 });
          expect(await a.acquire(name, "old", at(21), at(36))).toBe(false);
        }
      });
    });

    describe("cursor", () => {
      it("answers no cursor before one is saved", async () => {
        expect(await a.cursor(lease)).toBeUndefined();
      });

      it("loads the cursor another replica saved", async () => {
        await a.saveCursor(lease, { at: at(5), id: "req-5" });
        expect(await b.cursor(lease)).toEqual({ at: at(5), id: "req-5" });
      });

      it("replaces the saved cursor with the next one", async () => {
        await a.saveCursor(lease, { at: at(5), id: "req-5" });
        await a.saveCursor(lease, { at: at(9), id: "req-9" });
        expect(await a.cursor(lease)).toEqual({ at: at(9), id: "req-9" });
      });

      it("keeps cursors of different names apart", async () => {
        await a.saveCursor(lease, { at: at(5), id: "req-5" });
        expect(await a.cursor(`${lease}-other`)).toBeUndefined();
      });

      it("keeps a cursor and a lease of the same name apart", async () => {
        await a.saveCursor(lease, { at: at(5), id: "req-5" });
        expect(await a.acquire(lease, "A", at(0), at(15))).toBe(true);
        await a.release(lease, "A");
        expect(await a.cursor(lease)).toEqual({ at: at(5), id: "req-5" });
      });
    });
  });
}

analyticsStateContract("embedded", async () => {
  const db = createEmbeddedDocumentDb();
  return [createAnalyticsState(db), createAnalyticsState(db)];
});

describeWithServer("TEST_MONGO_URL", "analytics state on MongoDB", (url) => {
  const dbName = uniqueSchema("analytics_state");
  const dbs: DocumentDb[] = [];
  beforeAll(async () => {
    dbs.push(await openDocumentDb({ url, dbName }), await openDocumentDb({ url, dbName }));
  });
  afterAll(async () => {
    for (const db of dbs) await db.close();
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000, socketTimeoutMS: 5_000 });
    try {
      await client.db(dbName).dropDatabase();
    } finally {
      await client.close();
    }
  });
  analyticsStateContract("FerretDB, two connections", async () => {
    await dbs[0]!.collection(STATE_COLLECTION).deleteMany({});
    return [createAnalyticsState(dbs[0]!), createAnalyticsState(dbs[1]!)];
  });
});

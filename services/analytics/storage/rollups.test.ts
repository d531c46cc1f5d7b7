import { ConnectError } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Doc, UpsertOp } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { makeLogEntry } from "../../../test/support/analytics-harness.js";
import { openDocumentDb } from "../../../lib/stores/open-documents.js";
import { describeWithServer, uniqueSchema } from "../../../test/support/integration.js";
import { ALL_TENANTS, rollUp, rollupId, type Dimension, type RollupDelta } from "../domain/rollup.js";
import { mergeHistogram } from "../domain/histogram.js";
import { mergeSketch } from "../domain/hll.js";
import { createRollupStore, type RollupDoc, type RollupStore } from "./rollups.js";

const T0 = Date.parse("2026-03-10T12:00:00Z");
const minute = (m: number) => new Date(T0 + m * 60_000);

/** A delta with zero counts unless given; its id follows the store's naming. */
function makeDelta(overrides: Partial<RollupDelta> & { dim?: Dimension; tenant?: string; key?: string; minute?: Date } = {}): [string, RollupDelta] {
  const d: RollupDelta = {
    dim: "total", tenant: "p1", key: "", minute: minute(0), count: 1, errors: 0, latencySum: 10, cacheHits: 0, cacheMisses: 0,
    rateLimited: 0, histogram: { 100: 1 }, users: {}, lastAt: minute(0), ...overrides,
  };
  return [rollupId(d.dim, d.tenant, d.key, d.minute), d];
}

const all = (from = minute(-1_000), to = minute(1_000)) => ({ tenants: "all" as const, from, to });
/** Tenant p1 over a wide window (the total dimension's "all" reads ALL_TENANTS, which deltas made here do not carry). */
const p1 = (from = minute(-1_000), to = minute(1_000)) => ({ tenants: ["p1"], from, to });

/**
 * The rollup store contract, run against every DocumentDb adapter. `open`
 * answers a store whose rollup collection is empty, and how to close it.
 */
function rollupStoreContract(name: string, open: () => Promise<{ store: RollupStore; close(): Promise<void> }>) {
  describe(`rollup store (${name})`, () => {
    let store: RollupStore;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ store, close } = await open());
    });
    afterEach(() => close());

    describe("apply", () => {
      it("sums counters, latency and histogram buckets when the same ids are applied twice", async () => {
        const delta = () => makeDelta({
          count: 3, errors: 1, latencySum: 12.5, cacheHits: 2, cacheMisses: 1, rateLimited: 1, histogram: { 40: 2, 90: 1 },
        });
        await store.apply([delta()]);
        await store.apply([delta()]);
        const [doc, ...more] = await store.read({ dim: "total", ...p1() });
        expect(more).toEqual([]);
        expect(doc).toMatchObject({ count: 6, errors: 2, latencySum: 25, cacheHits: 4, cacheMisses: 2, rateLimited: 2, h: { 40: 4, 90: 2 } });
      });

      it("adds histogram buckets a later apply introduces next to the existing ones", async () => {
        await store.apply([makeDelta({ histogram: { 40: 1 } })]);
        await store.apply([makeDelta({ histogram: { 41: 2 } })]);
        expect((await store.read({ dim: "total", ...p1() }))[0]!.h).toEqual({ 40: 1, 41: 2 });
      });

      it("keeps the register-wise maximum of users sketches", async () => {
        await store.apply([makeDelta({ users: { 1: 3, 2: 5 } })]);
        await store.apply([makeDelta({ users: { 2: 4, 3: 1 } })]);
        await store.apply([makeDelta({ users: { 1: 7 } })]);
        expect((await store.read({ dim: "total", ...p1() }))[0]!.u).toEqual({ 1: 7, 2: 5, 3: 1 });
      });

      it("keeps the latest lastAt whatever the order applied", async () => {
        await store.apply([makeDelta({ lastAt: new Date(T0 + 40_000) })]);
        await store.apply([makeDelta({ lastAt: new Date(T0 + 10_000) })]);
        expect((await store.read({ dim: "total", ...p1() }))[0]!.lastAt).toEqual(new Date(T0 + 40_000));
      });

      it("stores dimension, tenant, key and minute as given on first insert", async () => {
        await store.apply([makeDelta({ dim: "endpoint", tenant: "p9", key: "GET /a", minute: minute(3) })]);
        expect((await store.read({ dim: "endpoint", ...all() }))[0]).toMatchObject({
          _id: rollupId("endpoint", "p9", "GET /a", minute(3)), dim: "endpoint", tenant: "p9", key: "GET /a", minute: minute(3),
        });
      });

      it("applies more deltas than one 1000-operation bulk holds", async () => {
        await store.apply(Array.from({ length: 1_050 }, (_, i) => makeDelta({ dim: "user", key: `u${i}` })));
        expect(await store.read({ dim: "user", ...all() })).toHaveLength(1_050);
      });

      it("adds up more than 100 existing documents in one apply", async () => {
        // A rollup round in a busy minute updates every (dimension, tenant, key) document of that minute at once.
        const deltas = () => Array.from({ length: 150 }, (_, i) => makeDelta({ dim: "endpoint", key: `GET /r${i}` }));
        await store.apply(deltas());
        const again = await store.apply(deltas()).then(() => "applied", (err: unknown) => `failed: ${ConnectError.from(err).message}`);
        expect(again).toBe("applied");
        const docs = await store.read({ dim: "endpoint", ...all() });
        expect([docs.length, docs.every((d) => d.count === 2)]).toEqual([150, true]);
      });

      it("keeps counts exact beyond 32-bit integers", async () => {
        await store.apply([makeDelta({ count: 2_147_483_000 })]);
        await store.apply([makeDelta({ count: 1_000 })]);
        expect((await store.read({ dim: "total", ...p1() }))[0]!.count).toBe(2_147_484_000);
      });

      it("applies nothing for no deltas", async () => {
        await store.apply([]);
        expect(await store.read({ dim: "total", ...p1() })).toEqual([]);
      });
    });

    describe("read", () => {
      beforeEach(async () => {
        await store.apply([
          makeDelta({ minute: minute(2) }), makeDelta({ minute: minute(0) }), makeDelta({ minute: minute(1), tenant: "p2" }),
          makeDelta({ minute: minute(1), tenant: "user:alice" }), makeDelta({ dim: "user", key: "alice", minute: minute(1) }),
          makeDelta({ dim: "user", key: "bob", minute: minute(1) }),
        ]);
      });
      const slots = (docs: { tenant: string; minute: Date }[]) => docs.map((d) => `${d.tenant}@${(d.minute.getTime() - T0) / 60_000}`);

      it("answers one dimension's documents, oldest minute first", async () => {
        const docs = await store.read({ dim: "total", ...all(), tenants: ["p1", "p2", "user:alice"] });
        expect(docs.map((d) => (d.minute.getTime() - T0) / 60_000)).toEqual([0, 1, 1, 2]);
        expect(docs.every((d) => d.dim === "total")).toBe(true);
      });

      it("answers only the tenants listed, or all: every tenant's documents, and for the total dimension the all-tenant sum", async () => {
        expect(slots(await store.read({ dim: "total", ...all(), tenants: ["p1", "user:alice"] })).sort())
          .toEqual(["p1@0", "p1@2", "user:alice@1"]);
        expect(await store.read({ dim: "total", ...all(), tenants: [] })).toEqual([]);
        await store.apply([makeDelta({ minute: minute(1), tenant: ALL_TENANTS, count: 3 })]);
        expect(slots(await store.read({ dim: "total", ...all() }))).toEqual([`${ALL_TENANTS}@1`]);
        expect(slots(await store.read({ dim: "user", ...all() }))).toEqual(["p1@1", "p1@1"]);
      });

      it("answers minutes in [from, to): from included, to excluded", async () => {
        expect(slots(await store.read({ dim: "total", tenants: ["p1", "p2", "user:alice"], from: minute(1), to: minute(2) })).sort())
          .toEqual(["p2@1", "user:alice@1"]);
      });

      it("answers only the keys listed", async () => {
        expect((await store.read({ dim: "user", ...all(), keys: ["bob", "carol"] })).map((d) => d.key)).toEqual(["bob"]);
      });
    });

    describe("top", () => {
      it("ranks keys by request count, summing counts, errors and latency across minutes and tenants", async () => {
        await store.apply([
          makeDelta({ dim: "endpoint", key: "GET /a", minute: minute(0), count: 2, errors: 1, latencySum: 20 }),
          makeDelta({ dim: "endpoint", key: "GET /a", minute: minute(1), tenant: "p2", count: 2, errors: 0, latencySum: 30 }),
          makeDelta({ dim: "endpoint", key: "GET /b", minute: minute(0), count: 5, errors: 2, latencySum: 50 }),
          makeDelta({ dim: "endpoint", key: "GET /c", minute: minute(0), count: 1, errors: 0, latencySum: 1 }),
        ]);
        const top = await store.top({ dim: "endpoint", ...all() }, 10);
        expect(top.map((t) => [t.key, t.count, t.errors, t.latencySum])).toEqual([
          ["GET /b", 5, 2, 50], ["GET /a", 4, 1, 50], ["GET /c", 1, 0, 1],
        ]);
      });

      it("merges the histograms of a key's documents", async () => {
        await store.apply([
          makeDelta({ dim: "user", key: "alice", minute: minute(0), count: 3, histogram: { 10: 1, 20: 2 } }),
          makeDelta({ dim: "user", key: "alice", minute: minute(5), tenant: "p2", count: 2, histogram: { 20: 1, 30: 1 } }),
        ]);
        expect((await store.top({ dim: "user", ...all() }, 10))[0]!.histogram).toEqual({ 10: 1, 20: 3, 30: 1 });
      });

      it("answers the latest lastAt of a key over its documents", async () => {
        await store.apply([
          makeDelta({ dim: "key", key: "k1", minute: minute(0), lastAt: new Date(T0 + 50_000) }),
          makeDelta({ dim: "key", key: "k1", minute: minute(7), lastAt: new Date(T0 + 7 * 60_000 + 5_000) }),
          makeDelta({ dim: "key", key: "k1", minute: minute(3), lastAt: new Date(T0 + 3 * 60_000 + 59_000) }),
        ]);
        expect((await store.top({ dim: "key", ...all() }, 10))[0]!.lastAt).toEqual(new Date(T0 + 7 * 60_000 + 5_000));
      });

      it("names one of the key's tenants", async () => {
        await store.apply([makeDelta({ dim: "key", key: "k1", tenant: "p7" }), makeDelta({ dim: "key", key: "k2", tenant: "p8" })]);
        expect((await store.top({ dim: "key", ...all() }, 10)).map((t) => [t.key, t.tenant]).sort()).toEqual([["k1", "p7"], ["k2", "p8"]]);
      });

      it("answers at most limit keys, ties broken by key", async () => {
        await store.apply(["d", "b", "a", "c"].map((key) => makeDelta({ dim: "user", key, count: 2 })));
        await store.apply([makeDelta({ dim: "user", key: "z", count: 9 })]);
        expect((await store.top({ dim: "user", ...all() }, 3)).map((t) => t.key)).toEqual(["z", "a", "b"]);
      });

      it("counts only the tenants and window asked for", async () => {
        await store.apply([
          makeDelta({ dim: "user", key: "alice", tenant: "p1", minute: minute(0), count: 1 }),
          makeDelta({ dim: "user", key: "alice", tenant: "p2", minute: minute(0), count: 10 }),
          makeDelta({ dim: "user", key: "alice", tenant: "p1", minute: minute(5), count: 100 }),
          makeDelta({ dim: "user", key: "bob", tenant: "p2", minute: minute(0), count: 4 }),
        ]);
        const top = await store.top({ dim: "user", tenants: ["p1"], from: minute(0), to: minute(5) }, 10);
        expect(top.map((t) => [t.key, t.count])).toEqual([["alice", 1]]);
      });

      it("answers nothing when no document matches", async () => {
        expect(await store.top({ dim: "endpoint", ...all() }, 10)).toEqual([]);
      });
    });

    describe("totals", () => {
      const sum = (docs: RollupDoc[]) => docs.reduce((t, d) => ({ count: t.count + d.count, errors: t.errors + d.errors }), { count: 0, errors: 0 });
      // Minutes from 11:58 to 15:02 around T0 = 12:00: ragged edges on both sides of three whole hours.
      const spread = () => [-2, -1, 0, 1, 59, 60, 61, 119, 120, 179, 180, 181, 182].map((m, i) =>
        makeDelta({ minute: minute(m), count: i + 1, errors: i % 2, histogram: { [10 + (i % 3)]: i + 1 }, users: { [i % 4]: i + 1 } }));

      it("answers the same totals from hour documents plus edge minutes as from minute documents alone", async () => {
        await store.apply(spread());
        for (const [from, to] of [[-2, 182], [-1, 181], [0, 180], [1, 179], [30, 90], [60, 120], [-5, 300]] as const) {
          const hourly = await store.totals(["p1"], minute(from), minute(to), { hourly: true });
          const minutely = await store.totals(["p1"], minute(from), minute(to), { hourly: false });
          const expected = sum(spread().map(([, d]) => d).filter((d) => d.minute >= minute(from) && d.minute < minute(to)) as unknown as RollupDoc[]);
          expect({ window: [from, to], ...sum(hourly) }).toEqual({ window: [from, to], ...expected });
          expect(sum(minutely)).toEqual(expected);
          const h = (docs: RollupDoc[]) => docs.reduce((acc, d) => mergeHistogram(acc, d.h), {});
          expect(h(hourly)).toEqual(h(minutely));
          const u = (docs: RollupDoc[]) => docs.reduce((acc, d) => mergeSketch(acc, d.u), {});
          expect(u(hourly)).toEqual(u(minutely));
        }
      });

      it("reads whole hours from one document each", async () => {
        await store.apply(spread());
        const docs = await store.totals(["p1"], minute(-2), minute(182), { hourly: true });
        // 2 edge minutes before 12:00, the hours 12, 13 and 14, 2 edge minutes from 15:00.
        expect(docs.map((d) => (d.minute.getTime() - T0) / 60_000).sort((a, b) => a - b)).toEqual([-2, -1, 0, 60, 120, 180, 181]);
      });

      it("adds later applies into the hour, merging counters, histogram, users sketch and lastAt", async () => {
        await store.apply([makeDelta({ minute: minute(5), count: 2, histogram: { 10: 2 }, users: { 1: 3 }, lastAt: new Date(T0 + 5 * 60_000) })]);
        await store.apply([makeDelta({ minute: minute(7), count: 3, histogram: { 10: 1, 11: 2 }, users: { 1: 2, 2: 4 }, lastAt: new Date(T0 + 7 * 60_000) })]);
        await store.apply([makeDelta({ minute: minute(6), count: 1, histogram: { 12: 1 }, users: { 3: 1 }, lastAt: new Date(T0 + 6 * 60_000) })]);
        const [hour, ...more] = await store.totals(["p1"], minute(0), minute(60), { hourly: true });
        expect(more).toEqual([]);
        expect(hour).toMatchObject({ tenant: "p1", minute: minute(0), count: 6, h: { 10: 3, 11: 2, 12: 1 }, u: { 1: 3, 2: 4, 3: 1 }, lastAt: new Date(T0 + 7 * 60_000) });
      });

      it("reads the tenants asked for, or for all the all-tenant sum", async () => {
        await store.apply([
          makeDelta({ tenant: "p1", count: 1 }), makeDelta({ tenant: "p2", count: 2 }), makeDelta({ tenant: ALL_TENANTS, count: 3 }),
          makeDelta({ tenant: "p1", minute: minute(70), count: 4 }),
        ]);
        for (const hourly of [true, false]) {
          expect(sum(await store.totals(["p1"], minute(0), minute(120), { hourly })).count).toBe(5);
          expect(sum(await store.totals(["p1", "p2", "p2"], minute(0), minute(120), { hourly })).count).toBe(7);
          expect(sum(await store.totals("all", minute(0), minute(120), { hourly })).count).toBe(3);
          expect(await store.totals([], minute(0), minute(120), { hourly })).toEqual([]);
        }
      });
    });

    describe("deleteOlderThan", () => {
      it("forgets minutes before the cut-off, keeps the cut-off minute and later, and answers how many", async () => {
        await store.apply([0, 1, 2, 3].map((m) => makeDelta({ minute: minute(m) })));
        expect(await store.deleteOlderThan(minute(2))).toBe(2); // the hour 12:00 has not ended by 12:02
        expect((await store.read({ dim: "total", ...p1() })).map((d) => d.minute)).toEqual([minute(2), minute(3)]);
      });

      it("forgets hour documents once their whole hour is before the cut-off", async () => {
        await store.apply([-61, 0].map((m) => makeDelta({ minute: minute(m) })));
        await store.deleteOlderThan(minute(30));
        expect((await store.totals(["p1"], minute(-120), minute(120), { hourly: true })).map((d) => d.minute)).toEqual([minute(0)]);
        await store.deleteOlderThan(minute(60));
        expect(await store.totals(["p1"], minute(-120), minute(120), { hourly: true })).toEqual([]);
      });
    });

    it("prepares its indexes again without failing", async () => {
      await store.prepare();
      await store.prepare();
    });
  });
}

describe("rollup store write order", () => {
  it("stores the all-tenant totals after every other minute rollup of the round, and hours last", async () => {
    const db = createEmbeddedDocumentDb();
    const writes: string[][] = [];
    const recording: typeof db = {
      ...db,
      collection: <T extends Doc>(name: string) => {
        const c = db.collection<T>(name);
        return { ...c, bulkUpsert: async (ops: readonly UpsertOp[]) => { writes.push(ops.map((o) => o.filter._id as string)); return c.bulkUpsert(ops); } };
      },
    };
    const store = createRollupStore(recording);
    await store.apply(rollUp([makeLogEntry({ projectId: "p1", userId: "alice", apiKeyId: "k1" }), makeLogEntry({ projectId: "p2" })]));
    const kinds = writes.map((ids) => [...new Set(ids.map((id) => (id.startsWith(`total|${ALL_TENANTS}|`) ? "all" : id.split("|")[0])))].sort().join(","));
    expect(kinds).toEqual(["endpoint,key,service,user", "total", "all", "hour"]);
  });
});

rollupStoreContract("embedded", async () => {
  const store = createRollupStore(createEmbeddedDocumentDb());
  await store.prepare();
  return { store, close: async () => undefined };
});

describeWithServer("TEST_MONGO_URL", "rollup store on MongoDB", (url) => {
  // A database per test: a test that wedges its database on the server must not take the others down with it.
  rollupStoreContract("FerretDB", async () => {
    const dbName = uniqueSchema("rollups");
    const db = await openDocumentDb({ url, dbName });
    const store = createRollupStore(db);
    await store.prepare();
    return {
      store,
      async close() {
        await db.close();
        await dropDatabase(url, dbName);
      },
    };
  });
});

/** Drops a test database, bounded: a database the server has wedged stays behind rather than hanging the suite. */
async function dropDatabase(url: string, dbName: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000, socketTimeoutMS: 5_000 });
  try {
    await client.db(dbName).dropDatabase();
  } catch (err) {
    process.stderr.write(`could not drop test database ${dbName}: ${String(err)}\n`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

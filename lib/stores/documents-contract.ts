import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejectionOf } from "../../test/support/rejection.js";
import type { Doc, DocumentCollection, DocumentDb } from "./documents.js";

// Fixed instants: the contract never reads the wall clock.
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (minutes: number): Date => new Date(T0 + minutes * 60_000);

/** Five documents covering numbers, strings, Dates, arrays and a missing field. */
const sample = (): Doc[] => [
  { _id: "a", n: 3, s: "banana", t: at(30), tags: ["x", "y"], g: "g1" },
  { _id: "b", n: 1, s: "apple", t: at(0), tags: ["y"], g: "g1" },
  { _id: "c", s: "cherry", tags: [], g: "g2" },
  { _id: "d", n: 10, s: "Apple", t: at(20), tags: ["z"], g: "g2" },
  { _id: "e", n: 5, s: "date", t: at(10), tags: ["x"], g: "g2" },
];
const ids = (docs: readonly Doc[]): string[] => docs.map((d) => d._id);
const sorted = (docs: readonly Doc[]): string[] => ids(docs).sort();

/**
 * The DocumentDb contract (lib/stores/documents.ts), run against every
 * adapter. `open` is called once; every test works in collections of its own,
 * named with a prefix unique to the run, and the suite empties them at the end.
 */
export function documentDbContract(name: string, open: () => Promise<DocumentDb>): void {
  describe(`DocumentDb contract (${name})`, () => {
    const prefix = `c_${randomBytes(4).toString("hex")}`;
    const used: string[] = [];
    let db: DocumentDb;
    beforeAll(async () => {
      db = await open();
    });
    afterAll(async () => {
      if (!db) return;
      for (const n of used) await db.collection(n).deleteMany({});
      await db.close();
    });
    /** A new, empty collection. */
    const fresh = <T extends Doc = Doc>(): DocumentCollection<T> => {
      used.push(`${prefix}_${used.length}`);
      return db.collection<T>(used[used.length - 1] ?? "");
    };
    const seeded = async (): Promise<DocumentCollection> => {
      const c = fresh();
      await c.insertMany(sample());
      return c;
    };

    it("answers a ping", async () => {
      await db.ping();
    });

    describe("insertMany", () => {
      it("stores every document and reads it back unchanged", async () => {
        const c = fresh();
        expect(await c.insertMany(sample())).toEqual({ inserted: 5, duplicates: [] });
        expect(await c.findOne({ _id: "a" })).toEqual(sample()[0]);
        expect(await c.count({})).toBe(5);
      });
      it("reports exactly the indexes whose _id exists or repeats in the batch, and stores the rest", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "x", v: 1 }]);
        const r = await c.insertMany([{ _id: "x", v: 2 }, { _id: "y", v: 3 }, { _id: "z", v: 4 }, { _id: "y", v: 5 }]);
        expect(r).toEqual({ inserted: 2, duplicates: [0, 3] });
        expect(await c.find({}, { sort: { _id: 1 } })).toEqual([{ _id: "x", v: 1 }, { _id: "y", v: 3 }, { _id: "z", v: 4 }]);
      });
      it("reports documents clashing on a unique index as duplicates", async () => {
        const c = fresh();
        await c.ensureIndex({ requestId: 1 }, { name: "requestId_unique", unique: true });
        await c.insertMany([{ _id: "1", requestId: "r1" }]);
        const r = await c.insertMany([{ _id: "2", requestId: "r1" }, { _id: "3", requestId: "r3" }, { _id: "4", requestId: "r3" }]);
        expect(r).toEqual({ inserted: 1, duplicates: [0, 2] });
        expect(sorted(await c.find({}))).toEqual(["1", "3"]);
      });
      it("accepts an empty batch", async () => {
        expect(await fresh().insertMany([])).toEqual({ inserted: 0, duplicates: [] });
      });
    });

    describe("find", () => {
      it("matches equality, $eq and $in", async () => {
        const c = await seeded();
        expect(sorted(await c.find({ g: "g1" }))).toEqual(["a", "b"]);
        expect(sorted(await c.find({ n: { $eq: 10 } }))).toEqual(["d"]);
        expect(sorted(await c.find({ _id: { $in: ["a", "c", "nope"] } }))).toEqual(["a", "c"]);
      });
      it("answers each document once for an _id $in naming it twice, and applies the filter's other conditions", async () => {
        const c = await seeded();
        expect(sorted(await c.find({ _id: { $in: ["a", "a", "c"] } }))).toEqual(["a", "c"]);
        expect(sorted(await c.find({ _id: { $in: ["a", "b", "c"] }, g: "g1" }))).toEqual(["a", "b"]);
        expect(await c.count({ _id: { $in: ["c", "c"] } })).toBe(1);
      });
      it("matches $gte/$lt ranges on numbers and on Dates", async () => {
        const c = await seeded();
        expect(sorted(await c.find({ n: { $gte: 3, $lt: 10 } }))).toEqual(["a", "e"]);
        expect(sorted(await c.find({ t: { $gte: at(10), $lt: at(30) } }))).toEqual(["d", "e"]);
      });
      it("matches an anchored $regex prefix, case-sensitively", async () => {
        const c = await seeded();
        expect(sorted(await c.find({ s: { $regex: "^ap" } }))).toEqual(["b"]);
        expect(sorted(await c.find({ s: /^A/ }))).toEqual(["d"]);
      });
      it("matches $exists and null (missing counts as null)", async () => {
        const c = await seeded();
        expect(sorted(await c.find({ n: { $exists: false } }))).toEqual(["c"]);
        expect(await c.count({ n: { $exists: true } })).toBe(4);
        expect(sorted(await c.find({ n: null }))).toEqual(["c"]);
      });
      it("matches $or and $and", async () => {
        const c = await seeded();
        expect(sorted(await c.find({ $or: [{ n: 1 }, { s: "cherry" }] }))).toEqual(["b", "c"]);
        expect(sorted(await c.find({ $and: [{ g: "g2" }, { n: { $gte: 5 } }] }))).toEqual(["d", "e"]);
      });
      it("sorts numbers ascending with missing fields first, and descending", async () => {
        const c = await seeded();
        expect(ids(await c.find({}, { sort: { n: 1 } }))).toEqual(["c", "b", "a", "e", "d"]);
        expect(ids(await c.find({}, { sort: { n: -1 } }))).toEqual(["d", "e", "a", "b", "c"]);
      });
      it("sorts strings by code point and Dates by instant", async () => {
        const c = await seeded();
        expect(ids(await c.find({}, { sort: { s: 1 } }))).toEqual(["d", "b", "a", "c", "e"]);
        expect(ids(await c.find({ t: { $exists: true } }, { sort: { t: -1 } }))).toEqual(["a", "d", "e", "b"]);
        expect(ids(await c.find({}, { sort: { g: 1, n: -1 } }))).toEqual(["a", "b", "d", "e", "c"]);
      });
      it("applies skip and limit after sorting", async () => {
        const c = await seeded();
        expect(ids(await c.find({}, { sort: { _id: 1 }, skip: 1, limit: 2 }))).toEqual(["b", "c"]);
        expect(ids(await c.find({}, { sort: { _id: -1 }, limit: 1 }))).toEqual(["e"]);
        expect(ids(await c.find({}, { sort: { _id: 1 }, skip: 4 }))).toEqual(["e"]);
      });
      it("answers an empty list when nothing matches", async () => {
        expect(await (await seeded()).find({ g: "none" })).toEqual([]);
      });
    });

    describe("findOne and count", () => {
      it("findOne answers a match, or undefined", async () => {
        const c = await seeded();
        expect(await c.findOne({ s: "cherry" })).toEqual(sample()[2]);
        expect(await c.findOne({ s: "kiwi" })).toBeUndefined();
      });
      it("count answers the number of matches", async () => {
        const c = await seeded();
        expect(await c.count({ g: "g2" })).toBe(3);
        expect(await c.count({ g: "none" })).toBe(0);
      });
    });

    describe("aggregate", () => {
      it("groups matched documents with $sum of a field", async () => {
        const c = await seeded();
        const rows = await c.aggregate([
          { $match: { t: { $gte: at(0) } } }, { $group: { _id: "$g", total: { $sum: "$n" } } }, { $sort: { _id: 1 } },
        ]);
        expect(rows).toEqual([{ _id: "g1", total: 4 }, { _id: "g2", total: 15 }]);
      });
      it("counts group members with $sum of a constant and with $count", async () => {
        const c = await seeded();
        expect(await c.aggregate([{ $group: { _id: "$g", docs: { $sum: 1 } } }, { $sort: { _id: 1 } }]))
          .toEqual([{ _id: "g1", docs: 2 }, { _id: "g2", docs: 3 }]);
        expect(await c.aggregate([{ $match: { n: { $gte: 3 } } }, { $group: { _id: "$g", docs: { $count: {} } } }, { $sort: { _id: 1 } }]))
          .toEqual([{ _id: "g1", docs: 1 }, { _id: "g2", docs: 2 }]);
      });
      it("groups by null and by an object of fields; $sum of a missing field is 0", async () => {
        const c = await seeded();
        expect(await c.aggregate([{ $group: { _id: null, n: { $sum: "$n" } } }])).toEqual([{ _id: null, n: 19 }]);
        expect(await c.aggregate([{ $group: { _id: null, none: { $sum: "$missing" } } }])).toEqual([{ _id: null, none: 0 }]);
        expect(await c.aggregate([{ $match: { g: "g1" } }, { $group: { _id: { g: "$g" }, c: { $sum: 1 } } }]))
          .toEqual([{ _id: { g: "g1" }, c: 2 }]);
      });
      it("groups without accumulators to list distinct values", async () => {
        const c = await seeded();
        expect(await c.aggregate([{ $group: { _id: "$g" } }, { $sort: { _id: -1 } }])).toEqual([{ _id: "g2" }, { _id: "g1" }]);
      });
      it("sorts, skips and limits groups", async () => {
        const c = await seeded();
        const rows = await c.aggregate([
          { $group: { _id: "$g", total: { $sum: "$n" } } }, { $sort: { total: -1 } }, { $skip: 1 }, { $limit: 1 },
        ]);
        expect(rows).toEqual([{ _id: "g1", total: 4 }]);
      });
      it("projects by inclusion and by exclusion", async () => {
        const c = await seeded();
        expect(await c.aggregate([{ $match: { _id: "a" } }, { $project: { n: 1, s: 1 } }])).toEqual([{ _id: "a", n: 3, s: "banana" }]);
        expect(await c.aggregate([{ $match: { _id: "b" } }, { $project: { _id: 0, tags: 0, t: 0 } }])).toEqual([{ n: 1, s: "apple", g: "g1" }]);
      });
      it("unwinds arrays, dropping documents whose array is empty", async () => {
        const c = await seeded();
        const rows = await c.aggregate([{ $unwind: "$tags" }, { $group: { _id: "$tags", c: { $sum: 1 } } }, { $sort: { _id: 1 } }]);
        expect(rows).toEqual([{ _id: "x", c: 2 }, { _id: "y", c: 2 }, { _id: "z", c: 1 }]);
      });
      it("$count answers one document, and none for no input", async () => {
        const c = await seeded();
        expect(await c.aggregate([{ $match: { g: "g2" } }, { $count: "n" }])).toEqual([{ n: 3 }]);
        expect(await c.aggregate([{ $match: { g: "none" } }, { $count: "n" }])).toEqual([]);
      });
      it("keeps Dates as Dates", async () => {
        const c = await seeded();
        expect(await c.aggregate([{ $match: { _id: "b" } }, { $project: { _id: 0, t: 1 } }])).toEqual([{ t: at(0) }]);
      });
    });

    describe("updateOne", () => {
      it("applies $set, $inc, $max, $min and $unset to the first match", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "u", n: 1, hi: 5, lo: 5, gone: true, nested: { k: 1 } }]);
        const r = await c.updateOne({ _id: "u" }, {
          $set: { name: "x", "nested.k": 2 }, $inc: { n: 2, fresh: 1 }, $max: { hi: 9, lo: 1 }, $min: { lo2: 7 }, $unset: { gone: "" },
        });
        expect(r).toEqual({ matched: 1, upserted: false });
        expect(await c.findOne({ _id: "u" })).toEqual({ _id: "u", n: 3, hi: 9, lo: 5, lo2: 7, nested: { k: 2 }, name: "x", fresh: 1 });
      });
      it("$max and $min compare Dates by instant", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "u", first: at(10), last: at(10) }]);
        await c.updateOne({ _id: "u" }, { $min: { first: at(5) }, $max: { last: at(5) } });
        expect(await c.findOne({ _id: "u" })).toEqual({ _id: "u", first: at(5), last: at(10) });
      });
      it("keeps $inc sums exact beyond the 32-bit integer range", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "u", bytes: 2_147_483_000 }]);
        await c.updateOne({ _id: "u" }, { $inc: { bytes: 1_000 } });
        await c.updateOne({ _id: "u" }, { $inc: { bytes: 1 } });
        expect((await c.findOne({ _id: "u" }))?.bytes).toBe(2_147_484_001);
      });
      it("ignores $setOnInsert when the document exists", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "u", created: at(0) }]);
        const r = await c.updateOne({ _id: "u" }, { $setOnInsert: { created: at(9) }, $inc: { n: 1 } }, { upsert: true });
        expect(r).toEqual({ matched: 1, upserted: false });
        expect(await c.findOne({ _id: "u" })).toEqual({ _id: "u", created: at(0), n: 1 });
      });
      it("changes nothing when nothing matches and upsert is off", async () => {
        const c = fresh();
        expect(await c.updateOne({ _id: "none" }, { $set: { x: 1 } })).toEqual({ matched: 0, upserted: false });
        expect(await c.count({})).toBe(0);
      });
      it("upserts a document made of the filter's equality fields, $setOnInsert and the update", async () => {
        const c = fresh();
        const r = await c.updateOne(
          { _id: "m1", route: { $eq: "/v1/x" }, "key.minute": 7, n: { $gte: 0 } },
          { $inc: { count: 2 }, $max: { peak: 4 }, $setOnInsert: { created: at(1) }, $set: { seen: true } },
          { upsert: true },
        );
        expect(r).toEqual({ matched: 0, upserted: true });
        expect(await c.findOne({ _id: "m1" })).toEqual({ _id: "m1", route: "/v1/x", key: { minute: 7 }, count: 2, peak: 4, created: at(1), seen: true });
      });
      it("upserts with a string _id when the filter names none", async () => {
        const c = fresh();
        await c.updateOne({ name: "n1" }, { $set: { v: 1 } }, { upsert: true });
        const doc = await c.findOne({ name: "n1" });
        expect(typeof doc?._id).toBe("string");
        expect(doc).toMatchObject({ name: "n1", v: 1 });
      });
      it("rejects a change that breaks a unique index with ALREADY_EXISTS and leaves the document", async () => {
        const c = fresh();
        await c.ensureIndex({ k: 1 }, { name: "k_unique", unique: true });
        await c.insertMany([{ _id: "1", k: "a" }, { _id: "2", k: "b" }]);
        expect((await rejectionOf(c.updateOne({ _id: "2" }, { $set: { k: "a" } }))).code).toBe(Code.AlreadyExists);
        expect((await rejectionOf(c.updateOne({ _id: "3" }, { $set: { k: "a" } }, { upsert: true }))).code).toBe(Code.AlreadyExists);
        expect(await c.find({}, { sort: { _id: 1 } })).toEqual([{ _id: "1", k: "a" }, { _id: "2", k: "b" }]);
      });
      it("rejects $inc of a non-numeric field with INTERNAL", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "u", s: "text" }]);
        expect((await rejectionOf(c.updateOne({ _id: "u" }, { $inc: { s: 1 } }))).code).toBe(Code.Internal);
        expect(await c.findOne({ _id: "u" })).toEqual({ _id: "u", s: "text" });
      });
      it("counts every one of many concurrent $inc upserts of one new document", async () => {
        const c = fresh();
        await Promise.all(Array.from({ length: 30 }, () => c.updateOne({ _id: "hot" }, { $inc: { n: 1 } }, { upsert: true })));
        expect(await c.findOne({ _id: "hot" })).toEqual({ _id: "hot", n: 30 });
      });
    });

    describe("updateMany", () => {
      it("updates every match and answers how many matched", async () => {
        const c = await seeded();
        expect(await c.updateMany({ g: "g2" }, { $inc: { n: 100 }, $set: { flagged: true } })).toEqual({ matched: 3 });
        expect(await c.count({ flagged: true })).toBe(3);
        expect(ids(await c.find({ g: "g2" }, { sort: { n: 1 } }))).toEqual(["c", "e", "d"]);
        expect((await c.findOne({ _id: "c" }))?.n).toBe(100);
        expect(await c.updateMany({ g: "none" }, { $set: { x: 1 } })).toEqual({ matched: 0 });
      });
    });

    describe("bulkUpsert", () => {
      it("applies many increments to the same and to different documents, adding up exactly", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "k0", count: 100 }]);
        const ops = Array.from({ length: 60 }, (_, i) => ({
          filter: { _id: `k${i % 4}` },
          update: { $inc: { count: 1, latency: i }, $max: { peak: i }, $setOnInsert: { minute: at(i % 4) } },
        }));
        await c.bulkUpsert(ops);
        const docs = await c.find({}, { sort: { _id: 1 } });
        expect(docs.map((d) => d.count)).toEqual([115, 15, 15, 15]);
        expect(docs.map((d) => d.latency)).toEqual([420, 435, 450, 465]);
        expect(docs.map((d) => d.peak)).toEqual([56, 57, 58, 59]);
        expect(docs.map((d) => d.minute)).toEqual([undefined, at(1), at(2), at(3)]);
      });
      it("adds up exactly under concurrent calls", async () => {
        const c = fresh();
        const batch = Array.from({ length: 10 }, (_, i) => ({ filter: { _id: `k${i % 3}` }, update: { $inc: { n: 1 } } }));
        await Promise.all(Array.from({ length: 10 }, () => c.bulkUpsert(batch)));
        expect((await c.find({}, { sort: { _id: 1 } })).map((d) => d.n)).toEqual([40, 30, 30]);
      });
      it("does nothing for no ops", async () => {
        const c = fresh();
        await c.bulkUpsert([]);
        expect(await c.count({})).toBe(0);
      });
    });

    describe("findOneAndUpdate", () => {
      it("answers the document after the update", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "j", state: "queued", tries: 0 }]);
        expect(await c.findOneAndUpdate({ state: "queued" }, { $set: { state: "running" }, $inc: { tries: 1 } }))
          .toEqual({ _id: "j", state: "running", tries: 1 });
        expect(await c.findOne({ _id: "j" })).toEqual({ _id: "j", state: "running", tries: 1 });
      });
      it("answers undefined and changes nothing when nothing matches", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "j", state: "running" }]);
        expect(await c.findOneAndUpdate({ state: "queued" }, { $set: { state: "x" } })).toBeUndefined();
        expect(await c.count({ state: "x" })).toBe(0);
      });
      it("with upsert, inserts and answers the new document", async () => {
        const c = fresh();
        expect(await c.findOneAndUpdate({ _id: "lease" }, { $set: { owner: "w1" }, $setOnInsert: { since: at(0) } }, { upsert: true }))
          .toEqual({ _id: "lease", owner: "w1", since: at(0) });
      });
      it("is atomic: of 20 concurrent claims of a free lease exactly one wins", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "lease", owner: null }]);
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
          c.findOneAndUpdate({ _id: "lease", owner: null }, { $set: { owner: `w${i}` } })));
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        expect(await c.findOne({ _id: "lease" })).toEqual(winners[0]);
      });
    });

    describe("deleteMany", () => {
      it("deletes the matches only and answers how many", async () => {
        const c = await seeded();
        expect(await c.deleteMany({ t: { $lt: at(15) } })).toBe(2);
        expect(sorted(await c.find({}))).toEqual(["a", "c", "d"]);
        expect(await c.deleteMany({ g: "none" })).toBe(0);
      });
      it("lets a deleted _id and unique key be used again", async () => {
        const c = fresh();
        await c.ensureIndex({ k: 1 }, { name: "k_unique", unique: true });
        await c.insertMany([{ _id: "1", k: "a" }]);
        await c.deleteMany({ _id: "1" });
        expect(await c.insertMany([{ _id: "1", k: "a" }])).toEqual({ inserted: 1, duplicates: [] });
      });
    });

    describe("ensureIndex", () => {
      it("is idempotent", async () => {
        const c = fresh();
        await c.ensureIndex({ g: 1, t: -1 }, { name: "g_t" });
        await c.ensureIndex({ g: 1, t: -1 }, { name: "g_t" });
        await c.ensureIndex({ k: 1 }, { name: "k_unique", unique: true });
        await c.ensureIndex({ k: 1 }, { name: "k_unique", unique: true });
        await c.insertMany([{ _id: "1", k: "a", g: "x", t: at(0) }, { _id: "2", k: "b", g: "x", t: at(0) }]);
        expect(await c.count({ g: "x" })).toBe(2);
      });
      it("enforces a compound unique index on the combination", async () => {
        const c = fresh();
        await c.ensureIndex({ minute: 1, route: 1 }, { name: "minute_route", unique: true });
        const r = await c.insertMany([
          { _id: "1", minute: at(0), route: "/a" }, { _id: "2", minute: at(0), route: "/b" },
          { _id: "3", minute: at(1), route: "/a" }, { _id: "4", minute: at(0), route: "/a" },
        ]);
        expect(r).toEqual({ inserted: 3, duplicates: [3] });
      });
      it("refuses a unique index over existing duplicates with ALREADY_EXISTS", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "1", k: "a" }, { _id: "2", k: "a" }]);
        expect((await rejectionOf(c.ensureIndex({ k: 1 }, { name: "k_unique", unique: true }))).code).toBe(Code.AlreadyExists);
      });
    });

    describe("copies", () => {
      it("keeps the store apart from documents passed in and handed out", async () => {
        const c = fresh();
        const doc = { _id: "d", list: [1], nested: { k: 1 } };
        await c.insertMany([doc]);
        doc.list.push(2);
        doc.nested.k = 2;
        const out = await c.findOne({ _id: "d" });
        (out?.list as number[]).push(3);
        (out?.nested as { k: number }).k = 3;
        const [found] = await c.find({ _id: "d" });
        (found?.nested as { k: number }).k = 4;
        expect(await c.findOne({ _id: "d" })).toEqual({ _id: "d", list: [1], nested: { k: 1 } });
      });
      it("keeps the store apart from values passed in updates", async () => {
        const c = fresh();
        await c.insertMany([{ _id: "d" }]);
        const value = { k: 1 };
        const after = await c.findOneAndUpdate({ _id: "d" }, { $set: { value } });
        value.k = 2;
        (after?.value as { k: number }).k = 3;
        expect(await c.findOne({ _id: "d" })).toEqual({ _id: "d", value: { k: 1 } });
      });
    });
  });
}

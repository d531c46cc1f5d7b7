import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { rejectionOf } from "../../test/support/rejection.js";
import { documentDbContract } from "./documents-contract.js";
import { createEmbeddedDocumentDb } from "./embedded-documents.js";
import { openDocumentDb } from "./open-documents.js";

documentDbContract("embedded", async () => createEmbeddedDocumentDb());

// What the port excludes because FerretDB lacks it (mongo.ts): the embedded
// store refuses it too, so code using it fails in local tests, not in CI.
describe("embedded DocumentDb refuses what FerretDB lacks", () => {
  const seeded = async () => {
    const c = createEmbeddedDocumentDb().collection("c");
    await c.insertMany([{ _id: "a", g: "x", n: 1, tags: ["t"] }]);
    return c;
  };
  it.each([
    ["$group $min", [{ $group: { _id: "$g", m: { $min: "$n" } } }]],
    ["$group $max", [{ $group: { _id: "$g", m: { $max: "$n" } } }]],
    ["$group $avg", [{ $group: { _id: "$g", m: { $avg: "$n" } } }]],
    ["$group $first", [{ $group: { _id: "$g", m: { $first: "$n" } } }]],
    ["$group with two accumulators", [{ $group: { _id: "$g", total: { $sum: "$n" }, docs: { $sum: 1 } } }]],
    ["$group expression", [{ $group: { _id: null, m: { $sum: { $multiply: ["$n", 2] } } } }]],
    ["$project of a field path", [{ $project: { x: "$n" } }]],
    ["$unwind document form", [{ $unwind: { path: "$tags", preserveNullAndEmptyArrays: true } }]],
    ["$lookup", [{ $lookup: { from: "o", localField: "g", foreignField: "g", as: "o" } }]],
    ["$match $expr", [{ $match: { $expr: { $gt: ["$n", 0] } } }]],
  ])("refuses %s with INTERNAL", async (_, pipeline) => {
    expect((await rejectionOf((await seeded()).aggregate(pipeline))).code).toBe(Code.Internal);
  });
  it("refuses a query operator outside the port with INTERNAL", async () => {
    expect((await rejectionOf((await seeded()).find({ n: { $mod: [2, 1] } }))).code).toBe(Code.Internal);
  });
  it("refuses an update operator outside the port with INTERNAL", async () => {
    const c = await seeded();
    expect((await rejectionOf(c.updateOne({ _id: "a" }, { $push: { tags: "u" } } as never))).code).toBe(Code.Internal);
  });
});

describe("embedded unique indexes", () => {
  // MongoDB's rule; FerretDB lets several documents lack the field (mongo.ts).
  it("count a missing field as null, so a second document lacking it clashes", async () => {
    const c = createEmbeddedDocumentDb().collection("c");
    await c.ensureIndex({ k: 1 }, { name: "k_unique", unique: true });
    expect(await c.insertMany([{ _id: "1" }, { _id: "2" }, { _id: "3", k: null }])).toEqual({ inserted: 1, duplicates: [1, 2] });
  });
});

describe("openDocumentDb without a URL", () => {
  it("opens the embedded store", async () => {
    const db = await openDocumentDb({ dbName: "unused" });
    expect(db.kind).toBe("embedded");
    await db.close();
  });
});

import { Code } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithServer, uniqueSchema } from "../../test/support/integration.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { useGlobalTracing } from "../../test/support/tracing.js";
import type { DocumentDb } from "./documents.js";
import { openDocumentDb } from "./open-documents.js";

// This file owns the process-global OpenTelemetry registration (vitest runs each file in a worker of its own).
const tracing = useGlobalTracing();

const SECRET = "s3cret-owner-id";

// A real server (FerretDB in CI); the run gets a database of its own, dropped afterwards.
describeWithServer("TEST_MONGO_URL", "MongoDB spans", (url) => {
  const dbName = uniqueSchema("db_tracing");
  const server = /^mongodb:\/\/(?:[^@/]*@)?([^:/,]+):(\d+)/.exec(url);
  let db: DocumentDb;
  beforeAll(async () => { db = await openDocumentDb({ url, dbName }); });
  afterAll(async () => {
    await db?.close();
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.db(dbName).dropDatabase();
    } finally {
      await client.close();
    }
  });

  it("gives every collection operation a CLIENT span under the active span, named by operation and collection", async () => {
    const c = db.collection("traced");
    const { parent, children } = await tracing.inSpan(async () => {
      await c.insertMany([{ _id: "a", owner: SECRET, n: 1 }, { _id: "b", owner: "other", n: 2 }]);
      await c.find({ owner: SECRET }, { sort: { n: 1 } });
      await c.findOne({ _id: "a" });
      await c.count({ owner: SECRET });
      await c.aggregate([{ $match: { owner: SECRET } }, { $group: { _id: "$owner", total: { $sum: "$n" } } }]);
      await c.updateOne({ _id: "a" }, { $set: { n: 3 } });
      await c.updateMany({ owner: SECRET }, { $inc: { n: 1 } });
      await c.bulkUpsert([{ filter: { _id: "c" }, update: { $set: { owner: SECRET } } }]);
      await c.findOneAndUpdate({ _id: "c" }, { $set: { n: 5 } });
      await c.deleteMany({ owner: "other" });
      await c.ensureIndex({ owner: 1, n: 1 }, { name: "owner_n", unique: true });
    });
    expect(children.map((s) => s.name)).toEqual([
      "insertMany traced", "find traced", "findOne traced", "countDocuments traced", "aggregate traced", "updateOne traced",
      "updateMany traced", "bulkWrite traced", "findOneAndUpdate traced", "deleteMany traced", "createIndex traced",
    ]);
    for (const s of children) {
      expect(s.kind, s.name).toBe(SpanKind.CLIENT);
      expect(s.spanContext().traceId, s.name).toBe(parent.traceId);
      expect(s.parentSpanContext?.spanId, s.name).toBe(parent.spanId);
      expect(s.status.code, s.name).toBe(SpanStatusCode.UNSET);
      expect(s.attributes, s.name).toEqual({
        "db.system.name": "mongodb", "db.namespace": dbName, "db.collection.name": "traced",
        "db.operation.name": s.name.split(" ")[0], "server.address": server?.[1], "server.port": Number(server?.[2]),
      });
    }
    // Filters, documents and pipelines hold ids and user data: none of it reaches a span.
    expect(JSON.stringify(children.map((s) => [s.attributes, s.events]))).not.toContain(SECRET);
  });

  it("marks a failed operation ERROR with the server's code and records the exception", async () => {
    let code: Code | undefined;
    const { children } = await tracing.inSpan(async () => {
      code = (await rejectionOf(db.collection("traced").aggregate([{ $bogus: {} }]))).code;
    });
    expect(code).toBe(Code.Internal); // the adapter's error mapping still applies
    expect(children.map((s) => [s.name, s.status.code])).toEqual([["aggregate traced", SpanStatusCode.ERROR]]);
    expect(children[0]?.attributes["error.type"]).toMatch(/^\d+$/);
    expect(children[0]?.events.map((e) => e.name)).toEqual(["exception"]);
  });

  it("makes no span without an active span", async () => {
    await db.collection("traced").find({});
    await db.collection("traced").count({});
    expect(tracing.finished()).toEqual([]);
  });

  it("makes no span under an active span that does not record", async () => {
    await tracing.inUnsampledSpan(() => db.collection("traced").find({}));
    expect(tracing.finished()).toEqual([]);
  });
});

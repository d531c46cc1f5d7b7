import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  MongoClient, MongoNetworkError, MongoNetworkTimeoutError, MongoServerError, MongoServerSelectionError,
  MongoTopologyClosedError,
} from "mongodb";
import { pino } from "pino";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeWithServer, uniqueSchema } from "../../test/support/integration.js";
import { ferretdbBinary, freePort, haveFerretdb, startFerretdb, stopProcess } from "../../test/support/processes.js";
import { rejectionOf, timedUnavailable, untilSucceeds } from "../../test/support/rejection.js";
import type { DocumentDb } from "./documents.js";
import { documentDbContract } from "./documents-contract.js";
import { createMongoDocumentDb, mongoError } from "./mongo.js";
import { openDocumentDb } from "./open-documents.js";

// A real server (FerretDB in CI); each run gets a database of its own, dropped afterwards.
describeWithServer("TEST_MONGO_URL", "DocumentDb on MongoDB", (url) => {
  const dbName = uniqueSchema("docs");
  documentDbContract("MongoDB", () => openDocumentDb({ url, dbName }));

  it("openDocumentDb with a URL opens the MongoDB adapter", async () => {
    const db = await openDocumentDb({ url, dbName });
    expect(db.kind).toBe("mongodb");
    await db.close();
  });

  it("creates secondary indexes on MongoDB but only unique ones on FerretDB, which never reads through the others", async () => {
    const db = await openDocumentDb({ url, dbName });
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
    try {
      const c = db.collection("index_choice");
      await c.ensureIndex({ a: 1 }, { name: "a_secondary" });
      await c.ensureIndex({ b: 1 }, { name: "b_unique", unique: true });
      const info = await client.db(dbName).command({ buildInfo: 1 });
      const names = (await client.db(dbName).collection("index_choice").listIndexes().toArray()).map((i) => i.name as string).sort();
      expect(names).toEqual(typeof info.ferretdbVersion === "string" ? ["_id_", "b_unique"] : ["_id_", "a_secondary", "b_unique"]);
    } finally {
      await client.close();
      await db.close();
    }
  });

  afterAll(async () => {
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.db(dbName).dropDatabase();
    } finally {
      await client.close();
    }
  });
});

describe("mongoError", () => {
  const serverError = (code: number, errmsg: string) => new MongoServerError({ code, errmsg, message: errmsg });
  it.each([
    ["duplicate key 11000", serverError(11000, "E11000 duplicate key error"), Code.AlreadyExists],
    ["FerretDB's SQLite unique violation", serverError(1, "constraint failed: UNIQUE constraint failed: index 'x'"), Code.AlreadyExists],
    ["server selection failure", new MongoServerSelectionError("no server", { error: undefined } as never), Code.Unavailable],
    ["network error", new MongoNetworkError("connection reset"), Code.Unavailable],
    ["socket timeout", new MongoNetworkTimeoutError("timed out"), Code.Unavailable],
    ["closed client", new MongoTopologyClosedError(), Code.Unavailable],
    ["a raw socket error", Object.assign(new Error("This socket has been ended by the other party"), { code: "EPIPE" }), Code.Unavailable],
    ["server shutting down", serverError(91, "ShutdownInProgress"), Code.Unavailable],
    ["not implemented", serverError(238, "$group accumulator \"$min\" is not implemented yet"), Code.Internal],
    ["any other error", new Error("boom"), Code.Internal],
  ])("maps %s", (_, err, code) => {
    const mapped = mongoError(err);
    expect(mapped.code).toBe(code);
    expect(mapped.cause).toBe(err);
    expect(mapped.rawMessage).not.toContain(err.message);
  });
  it("passes a ConnectError through", () => {
    const err = new ConnectError("x", Code.NotFound);
    expect(mongoError(err)).toBe(err);
  });
});

describe("createMongoDocumentDb", () => {
  it("throws INTERNAL for a malformed URL", () => {
    expect(() => createMongoDocumentDb("mongodb://", "x")).toThrow(expect.objectContaining({ code: Code.Internal }));
  });
});

describe("an unreachable MongoDB", () => {
  const opened: DocumentDb[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close()));
  });

  it("fails operations with UNAVAILABLE within 5 s when nothing listens", async () => {
    const db = createMongoDocumentDb(`mongodb://127.0.0.1:${await freePort()}/x`, "x");
    opened.push(db);
    expect(await timedUnavailable(() => db.collection("c").find({}))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => db.collection("c").findOneAndUpdate({ _id: "l" }, { $set: { o: 1 } }))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => db.ping())).toBeLessThan(5_000);
  });

  it("fails operations with UNAVAILABLE within 5 s when the server accepts but never answers", async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      const db = createMongoDocumentDb(`mongodb://127.0.0.1:${port}/x`, "x");
      opened.push(db);
      expect(await timedUnavailable(() => db.collection("c").insertMany([{ _id: "a" }]))).toBeLessThan(5_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("openDocumentDb refuses to start with UNAVAILABLE naming the server", async () => {
    const port = await freePort();
    const started = performance.now();
    const err = await rejectionOf(openDocumentDb({ url: `mongodb://user:secret@127.0.0.1:${port}/x`, dbName: "x" }));
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toContain(`127.0.0.1:${port}`);
    expect(err.rawMessage).not.toContain("secret");
  });
});

if (!haveFerretdb && process.env.CI !== "true") {
  process.stderr.write(`\n[skip] DocumentDb recovery: ${ferretdbBinary} is missing (scripts/infra/up.sh builds it)\n`);
}

describe.skipIf(!haveFerretdb && process.env.CI !== "true")("DocumentDb recovery (a FerretDB of its own)", () => {
  let dir: string;
  let port: number;
  let server: ChildProcess | undefined;
  let db: DocumentDb | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mesh-ferretdb-"));
    port = await freePort();
  });
  afterEach(async () => {
    await db?.close();
    if (server) await stopProcess(server);
    await rm(dir, { recursive: true, force: true });
    db = server = undefined;
  });

  it("fails with UNAVAILABLE while the server is down and works again, unchanged, once it returns", { timeout: 60_000 }, async () => {
    server = await startFerretdb(dir, port);
    const logged: string[] = [];
    const logger = pino({}, { write: (line: string) => logged.push(JSON.parse(line).msg) });
    db = createMongoDocumentDb(`mongodb://127.0.0.1:${port}/recovery`, "recovery", logger);
    const c = db.collection("c");
    await c.insertMany([{ _id: "before", n: 1 }]);

    await stopProcess(server);
    expect(await timedUnavailable(() => c.find({}))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => c.updateOne({ _id: "before" }, { $inc: { n: 1 } }))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => c.insertMany([{ _id: "during" }]))).toBeLessThan(5_000);

    server = await startFerretdb(dir, port);
    expect(await untilSucceeds(() => c.count({}), 10_000)).toBeLessThan(10_000);
    await c.updateOne({ _id: "before" }, { $inc: { n: 1 } });
    expect(await c.insertMany([{ _id: "after" }])).toEqual({ inserted: 1, duplicates: [] });
    expect(await c.find({}, { sort: { _id: 1 } })).toEqual([{ _id: "after" }, { _id: "before", n: 2 }]);
    expect(logged).toEqual(["MongoDB unavailable; operations fail with UNAVAILABLE until it returns", "MongoDB reachable again"]);
  });

  it("works once a server that was down at its first use comes up", { timeout: 60_000 }, async () => {
    db = createMongoDocumentDb(`mongodb://127.0.0.1:${port}/recovery`, "recovery");
    const c = db.collection("c");
    expect(await timedUnavailable(() => c.find({}))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => c.findOneAndUpdate({ _id: "l" }, { $set: { o: 1 } }, { upsert: true }))).toBeLessThan(5_000);

    server = await startFerretdb(dir, port);
    expect(await untilSucceeds(() => c.findOneAndUpdate({ _id: "l" }, { $set: { o: 1 } }, { upsert: true }), 10_000)).toBeLessThan(10_000);
    expect(await c.find({})).toEqual([{ _id: "l", o: 1 }]);
  });
});

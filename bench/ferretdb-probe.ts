/**
 * Primitive costs of the document server behind the logging and analytics
 * services (bench/README.md "Findings"), measured through the same adapter
 * the services use (lib/stores/mongo.ts), each in a fresh database:
 *
 *   ingest   insertMany of generated request records in 1000-record calls,
 *            with the logging service's five secondary indexes, with only
 *            `by_ingest`, and with none
 *   lookup   one findOne / updateOne by `_id` as the collection grows
 *            (constant on MongoDB; linear on FerretDB v1.24/SQLite, whose
 *            `_id` pushdown misses its own `_id` index)
 *   scan     a filtered find and a count over the collection (FerretDB
 *            pushes down no filter but a lone `_id`, so both read everything)
 *
 *   node_modules/.bin/tsx bench/ferretdb-probe.ts [--records 100000] [--only ingest,lookup,scan]
 *
 * Needs MONGO_URL or TEST_MONGO_URL. It never sends an update command that
 * matches 100 or more existing documents: on FerretDB v1.24 that wedges the
 * database (see the README).
 */
import { parseArgs } from "node:util";
import { createMongoDocumentDb } from "../lib/stores/mongo.js";
import type { Doc } from "../lib/stores/documents.js";
import { createTraffic, dropDatabase, freshDbName, int, machine, mongoUrlFromEnv, ms, serverVersion, time } from "./support.js";

const LOG_INDEXES: [Record<string, 1 | -1>, string][] = [
  [{ timestamp: -1, _id: -1 }, "by_time"],
  [{ projectId: 1, timestamp: -1 }, "by_project_time"],
  [{ userId: 1, timestamp: -1 }, "by_user_time"],
  [{ statusCode: 1, timestamp: -1 }, "by_status_time"],
  [{ ingestedAt: 1, _id: 1 }, "by_ingest"],
];

function logDocs(n: number, seed: number): Doc[] {
  const traffic = createTraffic(seed, `probe${seed}`);
  const now = new Date();
  return Array.from({ length: n }, () => {
    const s = traffic.next(now);
    return { ...s, ingestedAt: now, _id: s.requestId };
  });
}

async function withDb<R>(url: string, fn: (db: ReturnType<typeof createMongoDocumentDb>, name: string) => Promise<R>): Promise<R> {
  const name = freshDbName("bench_probe");
  const db = createMongoDocumentDb(url, name);
  try {
    return await fn(db, name);
  } finally {
    await db.close();
    await dropDatabase(url, name).catch(() => undefined);
  }
}

async function ingest(url: string, records: number): Promise<void> {
  console.log(`\ningest: insertMany of ${int(records)} request records in 1000-record calls (one caller)`);
  const docs = logDocs(records, 11);
  for (const [label, indexes] of [["5 secondary indexes (as the logging service)", LOG_INDEXES], ["by_ingest only", LOG_INDEXES.slice(4)], ["no secondary index", []]] as const) {
    await withDb(url, async (db) => {
      const logs = db.collection("request_logs");
      for (const [keys, name] of indexes) await logs.ensureIndex(keys, { name });
      const [, d] = await time(async () => {
        for (let i = 0; i < docs.length; i += 1000) await logs.insertMany(docs.slice(i, i + 1000));
      });
      console.log(`  ${label}: ${int(records / (d / 1000))} records/s (${ms(d / (records / 1000), 0)} per 1000)`);
    });
  }
}

async function lookup(url: string, records: number): Promise<void> {
  console.log(`\nlookup: findOne({ _id }) and updateOne({ _id }, $inc) of an existing document as the collection grows`);
  await withDb(url, async (db) => {
    const coll = db.collection("rollups");
    const docs = logDocs(records, 12);
    let stored = 0;
    for (const target of [1_000, 10_000, 30_000, 100_000, 300_000].filter((n) => n <= records)) {
      for (; stored < target; stored += 1000) await coll.insertMany(docs.slice(stored, Math.min(target, stored + 1000)));
      const id = docs[Math.floor(stored / 2)]!._id;
      const finds: number[] = [];
      const updates: number[] = [];
      for (let i = 0; i < 5; i++) {
        finds.push((await time(() => coll.findOne({ _id: id })))[1]);
        updates.push((await time(() => coll.updateOne({ _id: id }, { $inc: { bytesIn: 1 } })))[1]);
      }
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      console.log(`  ${int(stored)} documents: findOne by _id ${ms(median(finds))}, updateOne by _id ${ms(median(updates))}`);
    }
  });
}

async function scan(url: string, records: number): Promise<void> {
  console.log(`\nscan: a selective filter and a count over ${int(records)} request records`);
  await withDb(url, async (db) => {
    const logs = db.collection("request_logs");
    for (const [keys, name] of LOG_INDEXES) await logs.ensureIndex(keys, { name });
    const docs = logDocs(records, 13);
    for (let i = 0; i < docs.length; i += 1000) await logs.insertMany(docs.slice(i, i + 1000));
    const [found, findMs] = await time(() => logs.find({ statusCode: 503 }, { sort: { timestamp: -1, _id: -1 }, limit: 20 }));
    console.log(`  find({ statusCode: 503 }) sorted, limit 20 (indexed by by_status_time): ${ms(findMs)} (${found.length} documents)`);
    const [, countMs] = await time(() => logs.count({ statusCode: 503 }));
    console.log(`  count({ statusCode: 503 }): ${ms(countMs)}`);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { records: { type: "string", default: "100000" }, only: { type: "string", default: "ingest,lookup,scan" } },
  });
  const url = mongoUrlFromEnv();
  if (!url) throw new Error("needs MONGO_URL or TEST_MONGO_URL (source .data/infra/env)");
  const records = Number(values.records);
  const only = new Set(values.only.split(","));
  console.log(`# document server probe ${new Date().toISOString()}`);
  console.log(`machine: ${machine()}`);
  console.log(`server: ${await serverVersion(url)}`);
  if (only.has("ingest")) await ingest(url, records);
  if (only.has("lookup")) await lookup(url, records);
  if (only.has("scan")) await scan(url, Math.min(records, 100_000));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

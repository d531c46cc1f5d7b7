/**
 * Summary benchmark (bench/README.md): one day holding `--requests`
 * (default 1,000,000) generated requests (seeded, deterministic; ~10 projects,
 * 1000 users, 50 routes, a diurnal traffic curve over 24 h) is rolled up with
 * the analytics service's own code (rollUp over chunks of `--chunk` records,
 * the rollup worker's batch size, then RollupStore.apply) into the embedded
 * store or the MongoDB / FerretDB at MONGO_URL (else TEST_MONGO_URL). Then the
 * summary over the whole day is measured `--runs` times after `--warmup`
 * runs, for an admin over all tenants and for one project:
 *
 *   domain  createAnalyticsDomain(...).summary(adminCaller, …) in process
 *   grpc    GetSummary through a real gRPC client to a started analytics service
 *
 * and the answers are checked against the exact figures of the generated data.
 *
 *   node_modules/.bin/tsx bench/summary.ts [--store mongo|embedded] [--requests 1000000]
 *     [--chunk 5000] [--load chunk|day|insert] [--runs 50] [--warmup 5] [--budget 300]
 *     [--seed 7] [--db NAME] [--keep] [--no-what-if]
 *
 * `--load` (default chunk on the embedded store, insert on MongoDB servers):
 * see LoadMode. `--budget` caps the seconds spent on one series of runs (at
 * least 3 runs), for stores where one summary takes seconds.
 *
 * `--db NAME --keep` keeps the loaded database; a later run with the same
 * `--db NAME` (same --requests and --seed) measures it again without loading.
 */
import { parseArgs } from "node:util";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { AnalyticsService } from "../gen/mesh/analytics/v1/analytics_pb.js";
import { createGrpcTransport } from "../lib/grpc/transport.js";
import { identityHeaders, type Caller } from "../lib/identity.js";
import { createLogger } from "../lib/logger.js";
import type { LogEntry } from "../lib/request-log.js";
import type { Doc, DocumentDb } from "../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../lib/stores/embedded-documents.js";
import { openDocumentDb } from "../lib/stores/open-documents.js";
import { startAnalyticsService } from "../services/analytics/app.js";
import { loadAnalyticsConfig } from "../services/analytics/config.js";
import { addRollup, createAnalyticsDomain, emptyTotals, type Totals } from "../services/analytics/domain/analytics-domain.js";
import { mergeHistogram, percentiles } from "../services/analytics/domain/histogram.js";
import { estimate, mergeSketch } from "../services/analytics/domain/hll.js";
import { rollUp, tenantOf, type RollupDelta } from "../services/analytics/domain/rollup.js";
import { createRollupStore, hourDocsOf, HOURLY_COLLECTION, ROLLUPS_COLLECTION, type RollupDoc } from "../services/analytics/storage/rollups.js";
import {
  countDocuments, rawFind, waitServerIdle, createRng, createTraffic, distribution, dropDatabase, emptyDirectory, freshDbName, instrumentDb, int, machine, mib, ms,
  mongoUrlFromEnv, pidListeningOn, portOf, processRss, quantile, serverVersion, time,
} from "./support.js";

const MINUTE = 60_000;
const DAY_START = new Date("2026-11-21T00:00:00.000Z");
const DAY_END = new Date(DAY_START.getTime() + 1440 * MINUTE);
const META_COLLECTION = "bench_meta";

interface Exact {
  count: number;
  errors: number;
  latencySum: number;
  latencies: Float64Array;
  users: Set<string>;
  cacheHits: number;
  cacheMisses: number;
  rateLimited: number;
}

function newExact(capacity: number): Exact {
  return { count: 0, errors: 0, latencySum: 0, latencies: new Float64Array(capacity), users: new Set(), cacheHits: 0, cacheMisses: 0, rateLimited: 0 };
}

function addExact(x: Exact, e: LogEntry): void {
  x.latencies[x.count++] = e.latency;
  if (e.statusCode >= 500) x.errors++;
  x.latencySum += e.latency;
  if (e.userId) x.users.add(e.userId);
  if (e.cacheStatus === "HIT") x.cacheHits++;
  if (e.cacheStatus === "MISS") x.cacheMisses++;
  if (e.rateLimited) x.rateLimited++;
}

/** Requests per minute of the day: a diurnal curve (trough at 06:00 → peak at 18:00 UTC, 4:1), summing to exactly `total`. */
function perMinute(total: number): number[] {
  const w = Array.from({ length: 1440 }, (_, m) => 1 + 0.6 * Math.sin(2 * Math.PI * (m / 1440 - 0.5)));
  const sum = w.reduce((a, b) => a + b, 0);
  let cum = 0;
  let prev = 0;
  return w.map((x) => {
    cum += x;
    const upTo = Math.round((total * cum) / sum);
    const n = upTo - prev;
    prev = upTo;
    return n;
  });
}

/** The day's records in time order, in chunks of `chunk`. */
function* dayOfRecords(total: number, seed: number, chunk: number): Generator<LogEntry[]> {
  const traffic = createTraffic(seed, `day${seed}`);
  const jitter = createRng(seed ^ 0x5bd1e995);
  let buffer: LogEntry[] = [];
  const counts = perMinute(total);
  for (let m = 0; m < 1440; m++) {
    const n = counts[m]!;
    const base = DAY_START.getTime() + m * MINUTE;
    for (let i = 0; i < n; i++) {
      const at = new Date(base + Math.floor(((i + jitter.next()) * MINUTE) / n));
      const s = traffic.next(at);
      buffer.push({ ...s, ingestedAt: new Date(at.getTime() + 40) });
      if (buffer.length === chunk) {
        yield buffer;
        buffer = [];
      }
    }
  }
  if (buffer.length > 0) yield buffer;
}

interface LoadResult {
  exact: Map<string, Exact>;
  all: Exact;
  project: string;
  rollupDocs: number;
  generateMs: number;
  rollUpMs: number;
  applyMs: number;
  /** Counting the stored rollup documents afterwards. */
  countMs: number;
  loaded: boolean;
}

/**
 * How the rollups get into the store:
 * - chunk: RollupStore.apply after every chunk, as the rollup worker does;
 * - day:   rollUp the whole day in memory, then RollupStore.apply once (one upsert per document);
 * - insert: rollUp the whole day in memory, then insertMany the minute and hour
 *           documents RollupStore.apply would create (checked identical by
 *           `checkInsertEquivalence`).
 */
export type LoadMode = "chunk" | "day" | "insert";

/** The document `RollupStore.apply` creates when it upserts `d` into an absent `_id` ($setOnInsert + $inc + $max). */
export function rollupDocOf(id: string, d: RollupDelta): RollupDoc {
  const doc: RollupDoc = {
    _id: id, dim: d.dim, tenant: d.tenant, key: d.key, minute: d.minute, count: d.count, errors: d.errors, latencySum: d.latencySum,
    cacheHits: d.cacheHits, cacheMisses: d.cacheMisses, rateLimited: d.rateLimited, lastAt: d.lastAt, h: { ...d.histogram },
  };
  if (Object.keys(d.users).length > 0) doc.u = { ...d.users };
  return doc;
}

/** Deep equality of stored documents; numbers within 1e-9 relative (sums of latencies add up in another order). */
function sameDoc(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameDoc((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/**
 * Proves on the embedded store that inserting `rollupDocOf` documents stores
 * exactly what RollupStore.apply stores when applied chunk after chunk (first
 * three chunks of the day: new documents and updates of existing ones).
 */
async function checkInsertEquivalence(seed: number, requests: number, chunk: number): Promise<number> {
  const a = createEmbeddedDocumentDb();
  const b = createEmbeddedDocumentDb();
  const all = new Map<string, RollupDelta>();
  let chunks = 0;
  for (const records of dayOfRecords(requests, seed, chunk)) {
    await createRollupStore(a).apply(rollUp(records));
    rollUp(records, all);
    if (++chunks === 3) break;
  }
  await b.collection(ROLLUPS_COLLECTION).insertMany([...all].map(([id, d]) => rollupDocOf(id, d)));
  await b.collection(HOURLY_COLLECTION).insertMany(hourDocsOf(all.values()));
  let n = 0;
  for (const name of [ROLLUPS_COLLECTION, HOURLY_COLLECTION]) {
    const x = await a.collection(name).find({}, { sort: { _id: 1 } });
    const y = await b.collection(name).find({}, { sort: { _id: 1 } });
    if (x.length !== y.length || x.some((d, i) => !sameDoc(d, y[i]))) throw new Error(`inserted ${name} documents differ from applied ones`);
    n += x.length;
  }
  return n;
}

async function load(db: DocumentDb, opts: {
  requests: number; seed: number; chunk: number; reuse: boolean; mode: LoadMode;
  /** Counts the rollup documents (on FerretDB this takes longer than the adapter's 15 s socket timeout). */
  countRollups: () => Promise<number>;
}): Promise<LoadResult> {
  const rollups = createRollupStore(db);
  await rollups.prepare();
  const meta = db.collection<Doc & { requests: number; seed: number; rollupDocs: number }>(META_COLLECTION);
  const marker = await meta.findOne({ _id: "summary" });
  const skip = opts.reuse && marker?.requests === opts.requests && marker.seed === opts.seed;
  if (opts.reuse && !skip && (await opts.countRollups()) > 0) {
    throw new Error("the database holds rollups of another load; use another --db");
  }
  const all = newExact(opts.requests);
  const exact = new Map<string, Exact>();
  let generateMs = 0;
  let rollUpMs = 0;
  let applyMs = 0;
  let done = 0;
  let lastReport = Date.now();
  // Whole-day deltas, for the day and insert modes.
  const dayDeltas = new Map<string, RollupDelta>();
  const it = dayOfRecords(opts.requests, opts.seed, opts.chunk);
  for (;;) {
    let t0 = performance.now();
    const next = it.next();
    generateMs += performance.now() - t0;
    if (next.done) break;
    const records = next.value;
    for (const e of records) {
      addExact(all, e);
      const tenant = tenantOf(e);
      let x = exact.get(tenant);
      if (!x) exact.set(tenant, (x = newExact(opts.requests)));
      addExact(x, e);
    }
    t0 = performance.now();
    const deltas = rollUp(records);
    rollUpMs += performance.now() - t0;
    for (const [id, d] of deltas) {
      if (opts.mode === "chunk") break;
      const prev = dayDeltas.get(id);
      if (prev) mergeDelta(prev, d);
      else dayDeltas.set(id, d);
    }
    done += records.length;
    if (skip || opts.mode !== "chunk") continue;
    t0 = performance.now();
    await rollups.apply(deltas);
    applyMs += performance.now() - t0;
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      console.log(`  … ${int(done)} records rolled up (${int(done / ((generateMs + rollUpMs + applyMs) / 1000))}/s so far)`);
    }
  }
  if (!skip && opts.mode !== "chunk") {
    console.log(`  … ${int(done)} records rolled up into ${int(dayDeltas.size)} rollup documents; ${opts.mode === "day" ? "applying (one upsert each)" : "inserting"}`);
    const entries = [...dayDeltas];
    const slice = opts.mode === "day" ? 20_000 : 1_000;
    const coll = db.collection<RollupDoc>(ROLLUPS_COLLECTION);
    for (let i = 0; i < entries.length; i += slice) {
      const part = entries.slice(i, i + slice);
      const t0 = performance.now();
      if (opts.mode === "day") await rollups.apply(part);
      else await coll.insertMany(part.map(([id, d]) => rollupDocOf(id, d)));
      applyMs += performance.now() - t0;
      if (opts.mode === "insert" && i + slice >= entries.length) {
        const t1 = performance.now();
        await db.collection(HOURLY_COLLECTION).insertMany(hourDocsOf(dayDeltas.values()));
        applyMs += performance.now() - t1;
      }
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        console.log(`  … ${int(i + part.length)} documents stored (${int((i + part.length) / (applyMs / 1000))}/s)`);
      }
    }
  }
  const countStart = performance.now();
  const rollupDocs = skip ? marker.rollupDocs : await opts.countRollups();
  const countMs = performance.now() - countStart;
  if (!skip) await meta.updateOne({ _id: "summary" }, { $set: { requests: opts.requests, seed: opts.seed, rollupDocs } }, { upsert: true });
  // The busiest project is the one-project case.
  const project = [...exact.entries()].filter(([t]) => t.startsWith("prj_")).sort((a, b) => b[1].count - a[1].count)[0]![0];
  return { exact, all, project, rollupDocs, generateMs, rollUpMs, applyMs, countMs, loaded: !skip };
}

/** Adds delta `b` into `a` (same document). */
function mergeDelta(a: RollupDelta, b: RollupDelta): void {
  a.count += b.count;
  a.errors += b.errors;
  a.latencySum += b.latencySum;
  a.cacheHits += b.cacheHits;
  a.cacheMisses += b.cacheMisses;
  a.rateLimited += b.rateLimited;
  mergeHistogram(a.histogram, b.histogram);
  mergeSketch(a.users, b.users);
  if (b.lastAt > a.lastAt) a.lastAt = b.lastAt;
}

interface SummaryShape {
  totalRequests: number; totalErrors: number; errorRate: number; avgLatency: number;
  p50Latency: number; p95Latency: number; p99Latency: number; uniqueUsers: number; cacheHitRatio: number; rateLimited: number;
}

/** Compares a summary with the exact figures; answers the problems found. */
function check(s: SummaryShape, x: Exact): string[] {
  const problems: string[] = [];
  const sorted = Float64Array.from(x.latencies.subarray(0, x.count)).sort();
  const exactP = [0.5, 0.95, 0.99].map((p) => quantile(sorted as unknown as number[], p));
  if (s.totalRequests !== x.count) problems.push(`totalRequests ${s.totalRequests} ≠ ${x.count}`);
  if (s.totalErrors !== x.errors) problems.push(`totalErrors ${s.totalErrors} ≠ ${x.errors}`);
  if (Math.abs(s.avgLatency - x.latencySum / x.count) > 1e-6 * s.avgLatency) problems.push(`avgLatency ${s.avgLatency} ≠ ${x.latencySum / x.count}`);
  [s.p50Latency, s.p95Latency, s.p99Latency].forEach((v, i) => {
    if (Math.abs(v - exactP[i]!) / exactP[i]! > 0.05) problems.push(`p${[50, 95, 99][i]} ${v.toFixed(2)} vs exact ${exactP[i]!.toFixed(2)} (> 5 %)`);
  });
  if (Math.abs(s.uniqueUsers - x.users.size) / x.users.size > 0.1) problems.push(`uniqueUsers ${s.uniqueUsers} vs exact ${x.users.size} (> 10 %)`);
  if (s.rateLimited !== x.rateLimited) problems.push(`rateLimited ${s.rateLimited} ≠ ${x.rateLimited}`);
  const ratio = x.cacheHits / (x.cacheHits + x.cacheMisses);
  if (Math.abs(s.cacheHitRatio - ratio) > 1e-9) problems.push(`cacheHitRatio ${s.cacheHitRatio} ≠ ${ratio}`);
  return problems;
}

function exactLine(x: Exact): string {
  const sorted = Float64Array.from(x.latencies.subarray(0, x.count)).sort();
  const p = [0.5, 0.95, 0.99].map((q) => quantile(sorted as unknown as number[], q).toFixed(2));
  return `exact: ${int(x.count)} requests, ${int(x.errors)} errors (${((x.errors / x.count) * 100).toFixed(2)} %), p50/p95/p99 ${p.join(" / ")} ms, ${x.users.size} users`;
}

function summaryLine(s: SummaryShape): string {
  return `answer: ${int(s.totalRequests)} requests, ${int(s.totalErrors)} errors (${s.errorRate.toFixed(2)} %), ` +
    `p50/p95/p99 ${s.p50Latency.toFixed(2)} / ${s.p95Latency.toFixed(2)} / ${s.p99Latency.toFixed(2)} ms, ~${s.uniqueUsers} users, ` +
    `cache hit ratio ${s.cacheHitRatio.toFixed(3)}, ${int(s.rateLimited)} rate-limited`;
}

/** The database server's pid, so a failed series waits for it to finish the query it was abandoned on. */
let serverPidForWaits: number | undefined;

interface Series {
  name: string;
  dist: ReturnType<typeof distribution>;
  last: SummaryShape | undefined;
  /** Set when a call failed: the error and how long the failing call took. */
  failed?: { message: string; afterMs: number };
}

/**
 * `runs` timed calls after `warmup` untimed ones; stops early (after at least
 * 3) once `budgetMs` is spent, and at the first failure (a store timing out).
 */
async function measure(name: string, runs: number, warmup: number, budgetMs: number, fn: () => Promise<SummaryShape>): Promise<Series> {
  const t0 = performance.now();
  const durations: number[] = [];
  let last: SummaryShape | undefined;
  let warm = 0;
  try {
    for (; warm < warmup && (warm < 1 || performance.now() - t0 < budgetMs / 4); warm++) await fn();
    while (durations.length < runs && (durations.length < 3 || performance.now() - t0 < budgetMs)) {
      const [s, d] = await time(fn);
      durations.push(d);
      last = s;
    }
  } catch (err) {
    const afterMs = performance.now() - t0 - durations.reduce((a, b) => a + b, 0);
    const message = err instanceof Error ? err.message : String(err);
    console.log(`  ${name}: FAILED after ${ms(afterMs)}: ${message}`);
    const waited = await waitServerIdle(serverPidForWaits);
    if (waited > 3_000) console.log(`    (the server went on with the abandoned query for another ${(waited / 1000).toFixed(0)} s)`);
    return { name, dist: distribution(durations), last, failed: { message, afterMs } };
  }
  const dist = distribution(durations);
  console.log(`  ${name}: p50 ${ms(dist.p50)}, p95 ${ms(dist.p95)}, max ${ms(dist.max)} (${durations.length} runs after ${warm} warm-up` +
    `${durations.length < runs ? `; stopped at the ${budgetMs / 1000} s budget` : ""})`);
  return { name, dist, last };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: "string" },
      requests: { type: "string", default: "1000000" },
      chunk: { type: "string", default: "5000" },
      runs: { type: "string", default: "50" },
      warmup: { type: "string", default: "5" },
      seed: { type: "string", default: "7" },
      db: { type: "string" },
      keep: { type: "boolean", default: false },
      load: { type: "string" },
      budget: { type: "string", default: "300" },
    },
  });
  const url = mongoUrlFromEnv();
  const store = (values.store ?? (url ? "mongo" : "embedded")) as "mongo" | "embedded";
  if (store !== "mongo" && store !== "embedded") throw new Error("--store must be mongo or embedded");
  if (store === "mongo" && !url) throw new Error("--store mongo needs MONGO_URL or TEST_MONGO_URL (source .data/infra/env)");
  const requests = Number(values.requests);
  const runs = Number(values.runs);
  const budgetMs = Number(values.budget) * 1000;
  // On FerretDB v1.24/SQLite every upsert scans the whole collection (its _id
  // lookup misses the _id index; bench/README.md "Findings"), so a day of
  // rollups cannot be applied there in any useful time: by default the
  // documents those upserts would create are inserted instead.
  const loadMode = (values.load ?? (store === "mongo" ? "insert" : "chunk")) as LoadMode;
  if (!["chunk", "day", "insert"].includes(loadMode)) throw new Error("--load must be chunk, day or insert");
  const warmup = Number(values.warmup);
  const dbName = values.db ?? freshDbName("bench_summary");
  const serverPid = store === "mongo" ? pidListeningOn(portOf(url!)) : undefined;
  serverPidForWaits = serverPid;
  const logger = createLogger({ service: "bench-analytics", level: "warn" });

  console.log(`# summary benchmark ${new Date().toISOString()}`);
  console.log(`machine: ${machine()}`);
  console.log(`store: ${store === "mongo" ? `${await serverVersion(url!)}, database ${dbName}` : "embedded (in-process, mingo)"}`);
  console.log(`day ${DAY_START.toISOString()} → ${DAY_END.toISOString()}, ${int(requests)} requests, seed ${values.seed}, chunks of ${values.chunk}, load mode ${loadMode} ` +
    `(${{ chunk: "RollupStore.apply after every chunk", day: "RollupStore.apply once for the whole day", insert: "insertMany of the documents RollupStore.apply would create" }[loadMode]})\n`);
  if (loadMode === "insert") {
    const n = await checkInsertEquivalence(Number(values.seed), requests, Number(values.chunk));
    console.log(`insert-mode check: the first 3 chunks give ${int(n)} documents identical to RollupStore.apply's (embedded store)`);
  }

  const base = store === "mongo" ? await openDocumentDb({ url, dbName, logger }) : createEmbeddedDocumentDb();
  const { db, stats } = instrumentDb(base);
  let analytics: Awaited<ReturnType<typeof startAnalyticsService>> | undefined;
  try {
    const [loaded, loadMs] = await time(() => load(db, { requests, seed: Number(values.seed), chunk: Number(values.chunk), reuse: values.db !== undefined, mode: loadMode,
      countRollups: async () => (store === "mongo" ? (await countDocuments(url!, dbName, ROLLUPS_COLLECTION)).count : base.collection(ROLLUPS_COLLECTION).count({})),
    }));
    if (loaded.loaded) {
      console.log(`load: ${int(requests)} requests → ${int(loaded.rollupDocs)} rollup documents in ${(loadMs / 1000).toFixed(1)} s ` +
        `(${int(requests / (loadMs / 1000))} requests/s): generate ${(loaded.generateMs / 1000).toFixed(1)} s, rollUp ${(loaded.rollUpMs / 1000).toFixed(1)} s, ` +
        `${loadMode === "insert" ? "insertMany" : "RollupStore.apply"} ${(loaded.applyMs / 1000).toFixed(1)} s (${int(loaded.rollupDocs / (loaded.applyMs / 1000))} documents/s), ` +
        `counting them ${(loaded.countMs / 1000).toFixed(1)} s`);
    } else {
      console.log(`load: reused ${int(loaded.rollupDocs)} rollup documents already in ${dbName}`);
    }
    console.log(`RSS ${mib(process.memoryUsage.rss())}` +
      (serverPid ? `, database server RSS ${mib(processRss(serverPid) ?? 0)}` : ""));
    console.log(exactLine(loaded.all));

    const rollups = createRollupStore(db);
    const now = () => DAY_END;
    const domain = createAnalyticsDomain({ rollups, directory: emptyDirectory, now });
    const admin: Caller = { userId: "bench-admin", roles: ["admin"], isAdmin: true };
    const window = { from: DAY_START, to: DAY_END };
    // The same data through a window with ragged edges ("the last 24 hours" asked at a quarter past): 17 and 23 edge minutes.
    const ragged = { from: new Date(DAY_START.getTime() - 17 * MINUTE), to: new Date(DAY_END.getTime() + 23 * MINUTE) };
    const cases = [
      ["all tenants", "", loaded.all, window], [`project ${loaded.project}`, loaded.project, loaded.exact.get(loaded.project)!, window],
      ["all tenants, window 23:43 → 00:23 (ragged edges)", "", loaded.all, ragged],
      [`project ${loaded.project}, window 23:43 → 00:23`, loaded.project, loaded.exact.get(loaded.project)!, ragged],
    ] as const;

    // Where the time goes: the store read, then merging in process.
    try {
      const [docs, readMs] = await time(() => rollups.totals("all", window.from, window.to, { hourly: true }));
      const [, mergeMs] = await time(async () => docs.reduce(addRollup, emptyTotals()));
      const t = docs.reduce(addRollup, emptyTotals());
      const [, pctMs] = await time(async () => [percentiles(t.histogram, [0.5, 0.95, 0.99]), estimate(t.users)]);
      const bytes = Buffer.byteLength(JSON.stringify(docs));
      console.log(`breakdown (one all-tenant run): store read ${ms(readMs)} for ${int(docs.length)} documents (~${mib(bytes)} as JSON), ` +
        `merge ${ms(mergeMs)}, percentiles + HLL ${ms(pctMs, 2)}\n`);
    } catch (err) {
      console.log(`breakdown: the store read FAILED: ${err instanceof Error ? err.message : String(err)}`);
      if (store === "mongo") {
        // The same query without the adapter's 15 s socket timeout: how long the server needs.
        await waitServerIdle(serverPid);
        const raw = await rawFind(url!, dbName, HOURLY_COLLECTION, { hour: { $gte: DAY_START, $lt: DAY_END } }, { hour: 1 });
        console.log(`  the same find with no socket timeout: ${ms(raw.ms)} for ${int(raw.docs)} documents`);
      }
      console.log("");
    }

    const results: { scope: string; via: string; series: Series; problems: string[] }[] = [];
    for (const [scope, projectId, x, w] of cases) {
      console.log(`${scope} — ${exactLine(x)}`);
      stats.clear();
      const r = await measure("domain summary", runs, warmup, budgetMs, () => domain.summary(admin, { ...w, projectId }));
      for (const name of [HOURLY_COLLECTION, ROLLUPS_COLLECTION]) {
        const find = stats.get(`${name}.find`);
        if (find && r.dist.n > 0) {
          const fd = distribution(find.durations.slice(find.durations.length - r.dist.n));
          console.log(`    of which ${name} find p50 ${ms(fd.p50)} (${(find.docs / find.calls).toFixed(1)} documents per call, ${(find.calls / (r.dist.n + warmup)).toFixed(1)} calls per summary)`);
        }
      }
      const problems = r.last ? check(r.last, x) : [];
      if (r.last) console.log(`    ${summaryLine(r.last)}${problems.length ? `\n    PROBLEMS: ${problems.join("; ")}` : " ✓ matches the exact figures"}`);
      results.push({ scope, via: "domain", series: r, problems });
    }

    const config = loadAnalyticsConfig({
      ANALYTICS_PORT: "0", LOG_LEVEL: "warn", MONGO_DB: dbName, HEALTH_TARGETS: "", ALERT_INTERVAL_MS: "3600000",
      ROLLUP_INTERVAL_MS: "60000", ...(store === "mongo" ? { MONGO_URL: url } : {}),
    });
    analytics = await startAnalyticsService(config, logger, { db: base, directory: emptyDirectory, now, logSource: { read: async () => [] } });
    const transport = createGrpcTransport({ address: `127.0.0.1:${analytics.port}`, defaultTimeoutMs: 60_000 });
    const client = createClient(AnalyticsService, transport);
    const headers = identityHeaders({ userId: "bench-admin", roles: ["admin"] });
    console.log(`\nanalytics service on port ${analytics.port} (GetSummary over gRPC, as admin)`);
    for (const [scope, projectId, x, w] of cases) {
      const r = await measure(`gRPC GetSummary, ${scope}`, runs, warmup, budgetMs, () =>
        client.getSummary({ from: timestampFromDate(w.from), to: timestampFromDate(w.to), projectId }, { headers }));
      const problems = r.last ? check(r.last, x) : [];
      if (problems.length) console.log(`    PROBLEMS: ${problems.join("; ")}`);
      results.push({ scope, via: "gRPC", series: r, problems });
    }
    transport.close();

    console.log(`\n| store | scope | via | runs | p50 | p95 | max | < 200 ms (p95) | answer correct |`);
    console.log(`|---|---|---|---|---|---|---|---|---|`);
    for (const { scope, via, series: { dist, failed }, problems } of results) {
      const cells = failed && dist.n === 0
        ? `0 | FAILED after ${ms(failed.afterMs, 0)} (${failed.message}) | | | NO | –`
        : `${dist.n} | ${ms(dist.p50)} | ${ms(dist.p95)} | ${ms(dist.max)} | ${dist.p95 < 200 && !failed ? "yes" : "NO"} | ${problems.length ? "NO" : "yes"}`;
      console.log(`| ${store} | ${scope} | ${via} | ${cells} |`);
    }
    if (results.some((r) => r.problems.length > 0)) process.exitCode = 1;
  } finally {
    await analytics?.stop();
    await base.close();
    if (store === "mongo" && !values.keep) {
      await waitServerIdle(serverPid);
      await dropDatabase(url!, dbName).catch(() => undefined);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

/**
 * Ingest benchmark (bench/README.md): a real logging service
 * (startLoggingService, port 0) on the embedded store or on the MongoDB /
 * FerretDB at MONGO_URL (else TEST_MONGO_URL), in a fresh database per
 * scenario, driven over the network by a real gRPC client running in a worker
 * thread (so the service's event loop has the main thread to itself):
 *
 *   stream  IngestLogStream, the gateway's internal client stream of
 *           `--batch`-record messages, `c` streams at once
 *   batch   IngestLogBatch with `c` concurrent callers, each waiting for its
 *           answer before sending the next batch
 *
 * for c in `--concurrency`. Each scenario runs `--warmup` s, then measures
 * `--duration` s: records stored per second in the window (from the store's
 * insertMany completions), batch latency, CPU of the service thread, the
 * client thread, the whole process and the database server, peak RSS. After
 * the run it checks that the stored count equals what the service
 * acknowledged.
 *
 *   node_modules/.bin/tsx bench/ingest.ts [--store mongo|embedded] [--mode stream|batch|both]
 *     [--concurrency 1,2,4] [--batch 1000] [--duration 20] [--warmup 3] [--seed 1] [--keep]
 *     [--indexes all|by_ingest|none]
 *
 * `--indexes` is a what-if: the logging service's `prepare()` runs unchanged,
 * but the benchmark's db wrapper skips the secondary indexes it leaves out.
 */
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { LoggingService } from "../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcTransport } from "../lib/grpc/transport.js";
import { identityHeaders } from "../lib/identity.js";
import { createLogger } from "../lib/logger.js";
import { LOGS_COLLECTION } from "../lib/request-log.js";
import { createEmbeddedDocumentDb } from "../lib/stores/embedded-documents.js";
import { openDocumentDb } from "../lib/stores/open-documents.js";
import { startLoggingService } from "../services/logging/app.js";
import { loadLoggingConfig } from "../services/logging/config.js";
import {
  countDocuments, createResourceMeter, createTraffic, distribution, dropDatabase, freshDbName, instrumentDb, int, machine, mib, ms,
  mongoUrlFromEnv, pidListeningOn, portOf, serverVersion, time, type Sample,
} from "./support.js";

type Mode = "stream" | "batch";

interface ClientJob {
  readonly port: number;
  readonly mode: Mode;
  readonly concurrency: number;
  readonly batch: number;
  readonly seed: number;
  readonly prefix: string;
  /** Wall-clock (Date.now()) bounds of the measured window; sending stops at `end`. */
  readonly start: number;
  readonly end: number;
}

interface ClientResult {
  /** Records the service acknowledged over the whole run (warm-up included). */
  acked: number;
  /** Batch mode: records acknowledged by calls that completed inside the window. */
  windowAcked: number;
  /** Batch mode: latency of each call completed inside the window. */
  latencies: number[];
  rejected: number;
  /** CPU of the client thread over the window, % of one core. */
  cpuPct: number;
}

function wire(s: Sample) {
  return { ...s, timestamp: timestampFromDate(s.timestamp) };
}

// ---------------------------------------------------------------------------
// Client (worker thread)

async function runClient(job: ClientJob): Promise<ClientResult> {
  const transport = createGrpcTransport({ address: `127.0.0.1:${job.port}`, defaultTimeoutMs: 120_000 });
  const client = createClient(LoggingService, transport);
  // IngestLogBatch is a public RPC: call it as an admin, whose records keep their own projects.
  const headers = identityHeaders({ userId: "bench-admin", roles: ["admin"] });
  const result: ClientResult = { acked: 0, windowAcked: 0, latencies: [], rejected: 0, cpuPct: 0 };
  let cpu0 = process.threadCpuUsage();
  let t0 = performance.now();
  const windowTimer = setTimeout(() => { cpu0 = process.threadCpuUsage(); t0 = performance.now(); }, Math.max(0, job.start - Date.now()));
  let cpuPct = Number.NaN;
  const endTimer = setTimeout(() => {
    const c = process.threadCpuUsage(cpu0);
    cpuPct = ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100;
  }, Math.max(0, job.end - Date.now()));

  const one = async (i: number) => {
    const traffic = createTraffic(job.seed * 1000 + i, `${job.prefix}${i}`);
    const build = () => Array.from({ length: job.batch }, () => wire(traffic.next(new Date())));
    if (job.mode === "batch") {
      while (Date.now() < job.end) {
        const logs = build();
        const started = performance.now();
        const res = await client.ingestLogBatch({ logs }, { headers });
        const took = performance.now() - started;
        const done = Date.now();
        if (res.errors.length > 0) result.rejected += logs.length;
        result.acked += res.ingested;
        if (done >= job.start && done <= job.end) {
          result.windowAcked += res.ingested;
          result.latencies.push(took);
        }
      }
    } else {
      async function* messages() {
        while (Date.now() < job.end) yield { logs: build() };
      }
      const res = await client.ingestLogStream(messages());
      result.acked += res.ingested + res.duplicates;
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, (_, i) => one(i)));
  clearTimeout(windowTimer);
  clearTimeout(endTimer);
  transport.close();
  result.cpuPct = cpuPct;
  return result;
}

if (!isMainThread) {
  runClient(workerData as ClientJob).then(
    (r) => parentPort!.postMessage({ ok: true, result: r }),
    (err: unknown) => parentPort!.postMessage({ ok: false, error: String((err as Error)?.stack ?? err) }),
  );
}

// ---------------------------------------------------------------------------
// Orchestration (main thread: the logging service)

interface ScenarioResult {
  store: string;
  mode: Mode;
  concurrency: number;
  recordsPerSec: number;
  clientRecordsPerSec: number | undefined;
  batchLatency: ReturnType<typeof distribution> | undefined;
  insertLatency: ReturnType<typeof distribution>;
  serviceThreadCpuPct: number;
  serviceLoopUtilization: number;
  clientThreadCpuPct: number;
  processCpuPct: number;
  serverCpuPct: number | undefined;
  othersCpuPct: number | undefined;
  rssMax: number;
  serverRssMax: number | undefined;
  acked: number;
  stored: number;
  /** How long counting the stored records took. */
  countMs: number;
  verified: boolean;
}

async function scenario(opts: {
  store: "mongo" | "embedded"; url: string | undefined; mode: Mode; concurrency: number; batch: number;
  warmupMs: number; durationMs: number; seed: number; keep: boolean; serverPid: number | undefined;
  indexes: "all" | "by_ingest" | "none";
}): Promise<ScenarioResult> {
  const dbName = freshDbName(`bench_ingest_${opts.mode}${opts.concurrency}`);
  const logger = createLogger({ service: "bench-logging", level: "warn" });
  const base = opts.store === "mongo" ? await openDocumentDb({ url: opts.url, dbName, logger }) : createEmbeddedDocumentDb();
  let start = Number.POSITIVE_INFINITY;
  let end = Number.POSITIVE_INFINITY;
  let windowStored = 0;
  const insertDurations: number[] = [];
  const { db } = instrumentDb(base, (n, at, d) => {
    if (at >= start && at <= end) {
      windowStored += n;
      insertDurations.push(d);
    }
  }, (name) => opts.indexes === "all" || (opts.indexes === "by_ingest" && name === "by_ingest"));
  const config = loadLoggingConfig({
    LOGGING_PORT: "0", LOG_LEVEL: "warn", MONGO_DB: dbName, ...(opts.url && opts.store === "mongo" ? { MONGO_URL: opts.url } : {}),
  });
  // The db is opened exactly as startLoggingService would (openDocumentDb with
  // MONGO_URL / MONGO_DB), and handed over wrapped in the timing proxy.
  const service = await startLoggingService(config, logger, { directory: { projectIdsOf: async () => [] }, db });
  const meter = createResourceMeter(opts.serverPid);
  try {
    const t = Date.now() + 200;
    start = t + opts.warmupMs;
    end = start + opts.durationMs;
    const job: ClientJob = {
      port: service.port, mode: opts.mode, concurrency: opts.concurrency, batch: opts.batch, seed: opts.seed,
      prefix: `${Date.now().toString(36)}${opts.mode[0]}${opts.concurrency}-`, start, end,
    };
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    const resetTimer = setTimeout(() => meter.reset(), start - Date.now());
    let usage: ReturnType<typeof meter.read> | undefined;
    const readTimer = setTimeout(() => { usage = meter.read(); }, end - Date.now());
    const client = await new Promise<ClientResult>((resolve, reject) => {
      worker.once("message", (m: { ok: boolean; result?: ClientResult; error?: string }) =>
        m.ok ? resolve(m.result!) : reject(new Error(m.error)));
      worker.once("error", reject);
    });
    clearTimeout(resetTimer);
    clearTimeout(readTimer);
    await worker.terminate();
    usage ??= meter.read();
    const counted = opts.store === "mongo" ? await countDocuments(opts.url!, dbName, LOGS_COLLECTION)
      : await time(() => base.collection(LOGS_COLLECTION).count({})).then(([count, d]) => ({ count, ms: d }));
    const stored = counted.count;
    const windowSec = opts.durationMs / 1000;
    return {
      store: opts.store === "mongo" ? "mongo" : "embedded", mode: opts.mode, concurrency: opts.concurrency,
      recordsPerSec: windowStored / windowSec,
      clientRecordsPerSec: opts.mode === "batch" ? client.windowAcked / windowSec : undefined,
      batchLatency: opts.mode === "batch" ? distribution(client.latencies) : undefined,
      insertLatency: distribution(insertDurations),
      serviceThreadCpuPct: usage.mainThreadCpuPct, serviceLoopUtilization: usage.mainThreadEventLoopUtilization,
      clientThreadCpuPct: client.cpuPct, processCpuPct: usage.processCpuPct, serverCpuPct: usage.serverCpuPct, othersCpuPct: usage.othersCpuPct,
      rssMax: usage.rssMax, serverRssMax: usage.serverRssMax,
      acked: client.acked, stored, countMs: counted.ms, verified: stored === client.acked && client.rejected === 0,
    };
  } finally {
    meter.stop();
    await service.stop();
    await base.close();
    if (opts.store === "mongo" && !opts.keep) await dropDatabase(opts.url!, dbName).catch(() => undefined);
  }
}

function report(r: ScenarioResult): void {
  const lat = r.batchLatency;
  const lines = [
    `${r.store} ${r.mode} ×${r.concurrency}: ${int(r.recordsPerSec)} records/s stored` +
      (r.clientRecordsPerSec !== undefined ? ` (${int(r.clientRecordsPerSec)}/s acknowledged to the client)` : ""),
    lat ? `  batch RPC latency p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}, max ${ms(lat.max)} (${lat.n} batches)` : "  (client stream: no per-message acknowledgement; see store insert latency)",
    `  store insertMany p50 ${ms(r.insertLatency.p50)}, p99 ${ms(r.insertLatency.p99)} (${r.insertLatency.n} calls)`,
    `  CPU (% of one core): service thread ${r.serviceThreadCpuPct.toFixed(0)} (event loop ${(r.serviceLoopUtilization * 100).toFixed(0)} % busy), ` +
      `client thread ${r.clientThreadCpuPct.toFixed(0)}, whole process ${r.processCpuPct.toFixed(0)}` +
      (r.serverCpuPct !== undefined ? `, database server ${r.serverCpuPct.toFixed(0)}` : "") +
      (r.othersCpuPct !== undefined ? `; other processes ${r.othersCpuPct.toFixed(0)} (noise)` : ""),
    `  RSS peak: process ${mib(r.rssMax)}` + (r.serverRssMax !== undefined ? `, database server ${mib(r.serverRssMax)}` : ""),
    `  verify: acknowledged ${int(r.acked)}, stored ${int(r.stored)} → ${r.verified ? "OK" : "MISMATCH"} (counting took ${ms(r.countMs, 0)})`,
  ];
  console.log(lines.join("\n"));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      store: { type: "string" },
      mode: { type: "string", default: "both" },
      concurrency: { type: "string", default: "1,2,4" },
      batch: { type: "string", default: "1000" },
      duration: { type: "string", default: "20" },
      warmup: { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
      keep: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      indexes: { type: "string", default: "all" },
    },
  });
  const url = mongoUrlFromEnv();
  const store = (values.store ?? (url ? "mongo" : "embedded")) as "mongo" | "embedded";
  if (store !== "mongo" && store !== "embedded") throw new Error("--store must be mongo or embedded");
  if (store === "mongo" && !url) throw new Error("--store mongo needs MONGO_URL or TEST_MONGO_URL (source .data/infra/env)");
  const modes: Mode[] = values.mode === "both" ? ["stream", "batch"] : [values.mode as Mode];
  if (!modes.every((m) => m === "stream" || m === "batch")) throw new Error("--mode must be stream, batch or both");
  const levels = values.concurrency.split(",").map(Number);
  const batch = Number(values.batch);
  if (!(batch >= 1 && batch <= 1000)) throw new Error("--batch must be 1..1000");
  const serverPid = store === "mongo" ? pidListeningOn(portOf(url!)) : undefined;
  const indexes = values.indexes as "all" | "by_ingest" | "none";
  if (!["all", "by_ingest", "none"].includes(indexes)) throw new Error("--indexes must be all, by_ingest or none");

  console.log(`# ingest benchmark ${new Date().toISOString()}`);
  console.log(`machine: ${machine()}`);
  console.log(`store: ${store === "mongo" ? `${await serverVersion(url!)} at ${url!.replace(/\/\/[^@/]*@/, "//***@")}${serverPid ? ` (pid ${serverPid})` : ""}` : "embedded (in-process, mingo)"}`);
  console.log(`batch ${batch} records, warm-up ${values.warmup} s, measured ${values.duration} s per scenario` +
    (indexes === "all" ? "" : `\nWHAT-IF: request_logs indexes other than ${indexes === "none" ? "_id" : "_id and by_ingest"} are not created (not the service as it is)`) + "\n");
  const results: ScenarioResult[] = [];
  for (const mode of modes) {
    for (const concurrency of levels) {
      const r = await scenario({
        store, url, mode, concurrency, batch, warmupMs: Number(values.warmup) * 1000, durationMs: Number(values.duration) * 1000,
        seed: Number(values.seed), keep: values.keep, serverPid, indexes,
      });
      report(r);
      results.push(r);
    }
  }
  console.log("\n| store | mode | conc. | records/s | batch p50 | batch p99 | insertMany p50 | p99 | service thread CPU | client CPU | DB server CPU | others' CPU | RSS (proc / DB) | verified |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(`| ${r.store} | ${r.mode} | ${r.concurrency} | ${int(r.recordsPerSec)} | ${r.batchLatency ? ms(r.batchLatency.p50, 0) : "–"} | ${r.batchLatency ? ms(r.batchLatency.p99, 0) : "–"} | ` +
      `${ms(r.insertLatency.p50, 0)} | ${ms(r.insertLatency.p99, 0)} | ${r.serviceThreadCpuPct.toFixed(0)} % | ${r.clientThreadCpuPct.toFixed(0)} % | ` +
      `${r.serverCpuPct !== undefined ? `${r.serverCpuPct.toFixed(0)} %` : "–"} | ${r.othersCpuPct !== undefined ? `${r.othersCpuPct.toFixed(0)} %` : "–"} | ${mib(r.rssMax)}${r.serverRssMax !== undefined ? ` / ${mib(r.serverRssMax)}` : ""} | ${r.verified ? "yes" : "NO"} |`);
  }
  if (values.json) console.log(JSON.stringify(results.map(({ insertLatency, batchLatency, ...r }) => ({ ...r, insertLatency, batchLatency }))));
  if (results.some((r) => !r.verified)) process.exitCode = 1;
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

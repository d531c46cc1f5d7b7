import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Client, Interceptor } from "@connectrpc/connect";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import type { IngestLogStreamRequest, LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { createLogger } from "../../lib/logger.js";
import type { DocumentDb } from "../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../lib/stores/embedded-documents.js";
import { loadLoggingConfig } from "../../services/logging/config.js";
import { eventually } from "../../test/support/analytics-harness.js";
import { as, createFakeDirectory, freePort, makeLogRecord, startLoggingInstance, type LoggingInstance } from "../../test/support/logging-harness.js";
import type { LogRecordInit } from "./queued-record.js";
import { createAccessLogShipper, type AccessLogShipper, type AccessLogShipperOptions } from "./shipper.js";

/** The real logging service on the embedded store `db`, on `port` (0: any). */
async function startService(db: DocumentDb, port = 0): Promise<LoggingInstance> {
  const config = loadLoggingConfig({ LOGGING_PORT: String(port), LOG_LEVEL: "silent", SHUTDOWN_DRAIN_MS: "200" });
  const service = await startLoggingInstance(config, { directory: createFakeDirectory(), db });
  onTestFinished(() => service.stop());
  return service;
}
const portOf = (address: string) => Number(address.split(":")[1]);

/** Each IngestLogStream call the shipper makes: when it started and the record count of each message. */
interface Round { readonly at: number; readonly messages: number[] }

/** A shipper on a real gRPC transport to `address`, its rounds and its log lines recorded; closed when the test ends. */
function startShipper(address: string, opts: Partial<AccessLogShipperOptions> = {}) {
  const rounds: Round[] = [];
  const counting: Interceptor = (next) => async (req) => {
    if (!req.stream) return next(req);
    const round: Round = { at: performance.now(), messages: [] };
    rounds.push(round);
    async function* counted(input: AsyncIterable<unknown>) {
      for await (const m of input) {
        round.messages.push((m as IngestLogStreamRequest).logs.length);
        yield m;
      }
    }
    return next({ ...req, message: counted(req.message) } as typeof req);
  };
  // Short reconnect backoff, so the channel notices a restarted service at once.
  const transport = createGrpcTransport({
    address, interceptors: [counting],
    channelOptions: { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 200 },
  });
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ service: "gateway", destination: { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) } });
  const shipper = createAccessLogShipper({ transport, logger, flushIntervalMs: 50, backoffMinMs: 20, backoffMaxMs: 200, ...opts });
  onTestFinished(async () => {
    await shipper.close();
    transport.close();
  });
  return { shipper, rounds, lines };
}

/** Records of one test: `entry(i)` has request id `<run>-<i>` and path `<prefix><i>`. */
function testRecords() {
  const run = `t${randomUUID().slice(0, 8)}`;
  const prefix = `/shipper/${run}/`;
  return {
    prefix,
    id: (i: number) => `${run}-${i}`,
    entry: (i: number, overrides: Parameters<typeof makeLogRecord>[0] = {}): LogRecordInit =>
      makeLogRecord({ requestId: `${run}-${i}`, path: `${prefix}${i}`, ...overrides }),
  };
}
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

/** The request ids stored under `pathPrefix`, each as often as it is stored, sorted. */
async function storedIds(client: Client<typeof LoggingService>, pathPrefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let page = 1; ; page++) {
    const res = await client.queryLogs({ pathPrefix, page, limit: 100 }, as.admin());
    ids.push(...res.logs.map((l) => l.requestId));
    if (page * 100 >= res.total) return ids.sort();
  }
}

/** Resolves once `stats()` satisfies `done` (bounded). */
const until = (s: AccessLogShipper, what: string, done: (st: ReturnType<AccessLogShipper["stats"]>) => boolean, timeoutMs = 10_000) =>
  eventually(async () => (done(s.stats()) ? true : undefined), { what, timeoutMs, intervalMs: 20 });

let db: DocumentDb;
afterEach(async () => {
  await db?.close();
});

describe("access-log shipper against the logging service", () => {
  it("ships records in messages of at most batchSize, several per stream, and counts them", async () => {
    db = createEmbeddedDocumentDb();
    const service = await startService(db);
    const { shipper, rounds } = startShipper(service.address, { batchSize: 100, maxBatchesPerRound: 10 });
    const r = testRecords();
    for (const i of range(0, 2_000)) shipper.record(r.entry(i));

    await until(shipper, "2000 records shipped", (s) => s.shipped === 2_000);
    expect(shipper.stats()).toMatchObject({ buffered: 0, shipped: 2_000, dropped: 0, rejected: 0, failedAttempts: 0 });
    const sizes = rounds.flatMap((x) => x.messages);
    expect(sizes.every((n) => n <= 100)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(2_000);
    expect(rounds.length).toBeLessThanOrEqual(4); // 20 full messages need 2 rounds of 10
    expect(await storedIds(service.client, r.prefix)).toEqual(range(0, 2_000).map(r.id).sort());
  });

  it("sends a lone record once flushIntervalMs has passed, without waiting for a full batch", async () => {
    db = createEmbeddedDocumentDb();
    const service = await startService(db);
    const { shipper, rounds } = startShipper(service.address, { batchSize: 500, flushIntervalMs: 200 });
    const r = testRecords();
    const recordedAt = performance.now();
    shipper.record(r.entry(0));

    await until(shipper, "the record shipped", (s) => s.shipped === 1, 3_000);
    expect(rounds[0]!.at - recordedAt).toBeGreaterThanOrEqual(190);
    expect(await storedIds(service.client, r.prefix)).toEqual([r.id(0)]);
  });

  it("keeps every record through an outage, retrying with doubling backoff, and stores each exactly once when the service returns", { timeout: 60_000 }, async () => {
    db = createEmbeddedDocumentDb();
    const first = await startService(db);
    const { shipper, rounds } = startShipper(first.address, { batchSize: 100, backoffMinMs: 50, backoffMaxMs: 400, random: () => 0.999_999 });
    const r = testRecords();
    for (const i of range(0, 500)) shipper.record(r.entry(i));
    await until(shipper, "the first 500 shipped", (s) => s.shipped === 500);

    await first.stop();
    const outageStart = performance.now();
    for (let i = 500; i < 5_500; i += 250) { // traffic goes on during the outage: 5000 records over ~1 s
      for (const k of range(i, i + 250)) shipper.record(r.entry(k));
      await sleep(50);
    }
    await until(shipper, "5 failed attempts", (s) => s.failedAttempts >= 5);
    const attempts = rounds.filter((x) => x.at >= outageStart).map((x) => x.at);
    const gaps = attempts.slice(1, 5).map((at, k) => at - attempts[k]!);
    // random ≈ 1 removes the jitter: 50, 100, 200, 400 ms (timers may fire a millisecond early).
    [50, 100, 200, 400].forEach((ms, k) => expect(gaps[k], `gap after failed attempt ${k + 1}`).toBeGreaterThanOrEqual(ms - 2));
    expect(shipper.stats()).toMatchObject({ buffered: 5_000, shipped: 500, lastError: { code: "Unavailable" } });

    const second = await startService(db, portOf(first.address));
    await until(shipper, "the outage's 5000 shipped", (s) => s.shipped === 5_500 && s.buffered === 0, 20_000);
    const outageMs = performance.now() - outageStart;
    expect(shipper.stats()).toMatchObject({ dropped: 0, rejected: 0 });
    expect(await storedIds(second.client, r.prefix)).toEqual(range(0, 5_500).map(r.id).sort());
    expect(outageMs).toBeLessThan(20_000);
  });

  it("drops and counts exactly the records beyond maxBuffered while the service is down, warning once per interval", async () => {
    db = createEmbeddedDocumentDb();
    const port = await freePort();
    const { shipper, lines } = startShipper(`127.0.0.1:${port}`, { maxBuffered: 100, batchSize: 50, dropWarnIntervalMs: 60_000 });
    const r = testRecords();
    for (const i of range(0, 250)) shipper.record(r.entry(i));
    expect(shipper.stats()).toMatchObject({ buffered: 100, dropped: 150 });

    const service = await startService(db, port);
    await until(shipper, "the buffered 100 shipped", (s) => s.shipped === 100 && s.buffered === 0);
    expect(await storedIds(service.client, r.prefix)).toEqual(range(0, 100).map(r.id).sort()); // the newest were dropped
    await shipper.close();
    const warnings = lines.filter((l) => l.msg === "access-log buffer full: records dropped").map((l) => l.dropped);
    expect(warnings).toEqual([1, 149]); // the first drop at once, the rest of the interval at close
  });

  it("drops a record the service refuses, counting it as rejected, and ships the others", async () => {
    db = createEmbeddedDocumentDb();
    const service = await startService(db);
    const { shipper, lines } = startShipper(service.address, { batchSize: 100, maxBatchesPerRound: 10 });
    const r = testRecords();
    const bad = new Map([[150, r.entry(150, { method: "NOT A METHOD" })], [251, r.entry(251, { statusCode: 42 })]]);
    for (const i of range(0, 300)) shipper.record(bad.get(i) ?? r.entry(i));

    await until(shipper, "the queue drained", (s) => s.buffered === 0);
    expect(shipper.stats()).toMatchObject({ shipped: 298, rejected: 2, dropped: 0 });
    expect(await storedIds(service.client, r.prefix)).toEqual(range(0, 300).filter((i) => !bad.has(i)).map(r.id).sort());
    const refused = lines.filter((l) => String(l.msg).startsWith("access-log record refused"));
    expect(refused.map((l) => [l.request_id, l.reason])).toEqual([
      [r.id(150), expect.stringContaining("method")],
      [r.id(251), expect.stringContaining("status_code")],
    ]);
  });

  it("returns from record at once and never throws, the service down, the buffer full or the shipper closed", async () => {
    const { shipper } = startShipper(`127.0.0.1:${await freePort()}`, { maxBuffered: 40_000 });
    const r = testRecords();
    expect(() => shipper.record(null as unknown as LogRecordInit)).not.toThrow();
    expect(shipper.stats()).toMatchObject({ buffered: 0, rejected: 1 });
    const entries = range(0, 50_000).map((i) => r.entry(i));
    const started = performance.now();
    for (const e of entries) shipper.record(e);
    const perRecordUs = ((performance.now() - started) * 1000) / entries.length;
    expect(perRecordUs).toBeLessThan(20);
    expect(shipper.stats()).toMatchObject({ buffered: 40_000, dropped: 10_000 });
    await shipper.close();
    expect(() => shipper.record(r.entry(0))).not.toThrow();
    expect(shipper.stats()).toMatchObject({ dropped: 10_001 });
  });

  it("ships everything buffered when flushed, before the interval would have", async () => {
    db = createEmbeddedDocumentDb();
    const service = await startService(db);
    const { shipper } = startShipper(service.address, { batchSize: 500, flushIntervalMs: 60_000 });
    const r = testRecords();
    for (const i of range(0, 120)) shipper.record(r.entry(i));

    await shipper.flush(5_000);
    expect(shipper.stats()).toMatchObject({ buffered: 0, shipped: 120 });
    expect(await storedIds(service.client, r.prefix)).toHaveLength(120);
  });

  it("returns from flush after its timeout while the service is down, keeping the records", async () => {
    const { shipper } = startShipper(`127.0.0.1:${await freePort()}`, { flushIntervalMs: 60_000, backoffMinMs: 100, backoffMaxMs: 100 });
    const r = testRecords();
    for (const i of range(0, 10)) shipper.record(r.entry(i));

    const started = performance.now();
    await shipper.flush(300);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2_000);
    expect(shipper.stats().buffered).toBe(10);
    expect(shipper.stats().failedAttempts).toBeGreaterThanOrEqual(1);
  });

  it("stops at close without waiting out a retry backoff", async () => {
    const { shipper, rounds } = startShipper(`127.0.0.1:${await freePort()}`, { backoffMinMs: 30_000, backoffMaxMs: 30_000 });
    shipper.record(testRecords().entry(0));
    await until(shipper, "a failed attempt", (s) => s.failedAttempts === 1);

    const started = performance.now();
    await shipper.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(rounds).toHaveLength(1);
  });
});

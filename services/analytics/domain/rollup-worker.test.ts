import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LogEntry } from "../../../lib/request-log.js";
import type { DocumentDb } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { makeLogEntry } from "../../../test/support/analytics-harness.js";
import { createRollupStore, type RollupStore } from "../storage/rollups.js";
import { createAnalyticsState, type AnalyticsState } from "../storage/state.js";
import type { LogCursor, LogSource } from "./log-source.js";
import { createRollupWorker } from "./rollup-worker.js";

const T0 = Date.parse("2026-03-10T12:00:00Z");
const at = (seconds: number) => new Date(T0 + seconds * 1_000);
const everything = { tenants: "all" as const, from: new Date(T0 - 3_600_000), to: new Date(T0 + 3_600_000) };

/**
 * A LogSource over an array, answering records in ingest order (ingestedAt,
 * then request id) strictly after the cursor, as ReadLogs does; it notes the
 * cursors it was asked from.
 */
function arraySource(records: LogEntry[]): LogSource & { readonly asked: (LogCursor | undefined)[]; push(...more: LogEntry[]): void } {
  const asked: (LogCursor | undefined)[] = [];
  const order = (a: { at: Date; id: string }, b: { at: Date; id: string }) => a.at.getTime() - b.at.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const pos = (e: LogEntry) => ({ at: e.ingestedAt, id: e.requestId });
  return {
    asked,
    push: (...more) => records.push(...more),
    async read(after, limit) {
      asked.push(after);
      return records.slice().sort((x, y) => order(pos(x), pos(y))).filter((e) => !after || order(pos(e), after) > 0).slice(0, limit);
    },
  };
}

/** `n` records ingested one second apart from `start` seconds, request ids sorting in ingest order. */
const records = (n: number, start = 0, overrides: Partial<LogEntry> = {}) => Array.from({ length: n }, (_, i) => {
  const seq = start + i;
  return makeLogEntry({ requestId: `req-${String(seq).padStart(5, "0")}`, timestamp: at(seq), ingestedAt: at(seq + 1), ...overrides });
});

let db: DocumentDb;
let rollups: RollupStore;
let state: AnalyticsState;

beforeEach(async () => {
  db = createEmbeddedDocumentDb();
  rollups = createRollupStore(db);
  state = createAnalyticsState(db);
  await rollups.prepare();
});
afterEach(async () => {
  await db.close();
});

const totalCount = async () => (await rollups.read({ dim: "total", ...everything })).reduce((s, d) => s + d.count, 0);

describe("rollup worker", () => {
  it("rolls up the records read and answers how many", async () => {
    const worker = createRollupWorker({ state, rollups, source: arraySource(records(7, 0, { statusCode: 500 })) });
    expect(await worker.runOnce()).toBe(7);
    const docs = await rollups.read({ dim: "total", ...everything });
    expect(docs.reduce((s, d) => s + d.count, 0)).toBe(7);
    expect(docs.reduce((s, d) => s + d.errors, 0)).toBe(7);
  });

  it("saves the last record's ingest position as the cursor", async () => {
    const worker = createRollupWorker({ state, rollups, source: arraySource(records(3)) });
    await worker.runOnce();
    expect(await state.cursor("rollup")).toEqual({ at: at(3), id: "req-00002" });
  });

  it("reads the first round from the beginning and the next from the saved cursor", async () => {
    const source = arraySource(records(3));
    const worker = createRollupWorker({ state, rollups, source });
    await worker.runOnce();
    await worker.runOnce();
    expect(source.asked).toEqual([undefined, { at: at(3), id: "req-00002" }]);
  });

  it("continues after the cursor on a second run without counting anything twice", async () => {
    const source = arraySource(records(4));
    const worker = createRollupWorker({ state, rollups, source });
    await worker.runOnce();
    source.push(...records(3, 4));
    expect(await worker.runOnce()).toBe(3);
    expect(await totalCount()).toBe(7);
    expect(await state.cursor("rollup")).toEqual({ at: at(7), id: "req-00006" });
  });

  it("answers 0 and keeps the cursor when nothing new arrived", async () => {
    const worker = createRollupWorker({ state, rollups, source: arraySource(records(2)) });
    await worker.runOnce();
    expect(await worker.runOnce()).toBe(0);
    expect(await state.cursor("rollup")).toEqual({ at: at(2), id: "req-00001" });
    expect(await totalCount()).toBe(2);
  });

  it("reads at most a batch per round, a full batch telling the caller more may be waiting", async () => {
    const worker = createRollupWorker({ state, rollups, source: arraySource(records(7)), batch: 3 });
    expect(worker.batch).toBe(3);
    const rounds: number[] = [];
    for (let n = await worker.runOnce(); ; n = await worker.runOnce()) {
      rounds.push(n);
      if (n < worker.batch) break;
    }
    expect(rounds).toEqual([3, 3, 1]);
    expect(await totalCount()).toBe(7);
  });

  it("reads 5000 records per round by default", () => {
    expect(createRollupWorker({ state, rollups, source: arraySource([]) }).batch).toBe(5_000);
  });

  it("orders records ingested at the same instant by request id", async () => {
    const same = ["req-b", "req-a", "req-c"].map((requestId) => makeLogEntry({ requestId, ingestedAt: at(1), timestamp: at(0) }));
    const worker = createRollupWorker({ state, rollups, source: arraySource(same), batch: 2 });
    await worker.runOnce();
    expect(await state.cursor("rollup")).toEqual({ at: at(1), id: "req-b" });
    expect(await worker.runOnce()).toBe(1);
    expect(await totalCount()).toBe(3);
  });

  it("resumes from the stored cursor in a new worker, as another replica taking over would", async () => {
    const source = arraySource(records(5));
    await createRollupWorker({ state, rollups, source, batch: 2 }).runOnce();
    const other = createRollupWorker({ state: createAnalyticsState(db), rollups: createRollupStore(db), source, batch: 10 });
    expect(await other.runOnce()).toBe(3);
    expect(await totalCount()).toBe(5);
  });

  it("keeps the cursor when storing the rollups fails, so the round is read again and counted once", async () => {
    const source = arraySource(records(4));
    const failing: RollupStore = { ...rollups, apply: () => Promise.reject(new Error("store down")) };
    await expect(createRollupWorker({ state, rollups: failing, source }).runOnce()).rejects.toThrow("store down");
    expect(await state.cursor("rollup")).toBeUndefined();
    expect(await createRollupWorker({ state, rollups, source }).runOnce()).toBe(4);
    expect(await totalCount()).toBe(4);
  });

  it("rolls each record into its own minute by its request time, not its ingest time", async () => {
    const late = makeLogEntry({ requestId: "late", timestamp: at(-120), ingestedAt: at(5) });
    await createRollupWorker({ state, rollups, source: arraySource([late]) }).runOnce();
    expect((await rollups.read({ dim: "total", ...everything })).map((d) => d.minute)).toEqual([at(-120)]);
  });
});

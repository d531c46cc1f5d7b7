import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it, onTestFinished } from "vitest";
import { createNotifier, type Notifier } from "../../../lib/event-feed.js";
import { createLogger } from "../../../lib/logger.js";
import type { DocumentDb } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { callers, createFakeDirectory, makeLogInput } from "../../../test/support/logging-harness.js";
import { recordStream, type StreamRecorder } from "../../../test/support/project-harness.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { makeLogEntry } from "../storage/contract.js";
import { createDocumentLogStore } from "../storage/documents.js";
import type { LogEntry, LogStore } from "../storage/port.js";
import { createLoggingDomain } from "./logging-domain.js";
import { createTailHub } from "./tail-hub.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);
const logger = createLogger({ service: "logging", level: "silent" });
const now = () => at(0);

/** A fresh embedded document store, closed when the test ends. */
function freshDb(): DocumentDb {
  const db = createEmbeddedDocumentDb();
  onTestFinished(() => db.close());
  return db;
}

async function freshStore(db = freshDb()): Promise<LogStore> {
  const store = createDocumentLogStore(db);
  await store.prepare();
  return store;
}

type Hub = ReturnType<typeof createTailHub>;

/** Subscribes to everything `hub` delivers (aborted when the test ends); resolves once subscribed. */
async function subscribeAll(hub: Hub): Promise<StreamRecorder<LogEntry>> {
  const before = hub.subscribers;
  const rec = recordStream((signal) => hub.subscribe(() => true, signal));
  onTestFinished(() => rec.close());
  await until(() => hub.subscribers > before, "the subscription");
  return rec;
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(2);
  }
}

/** Stores entries as another replica would (this hub's notifier is not told). */
async function storeDirectly(store: LogStore, ...entries: LogEntry[]): Promise<void> {
  expect((await store.insert(entries)).inserted).toBe(entries.length);
}

const idsOf = (rec: StreamRecorder<LogEntry>) => rec.received.map((r) => r.message.requestId);

describe("tail hub", () => {
  it("delivers through two hubs on one shared store (two replicas) what is ingested through one, within a second", async () => {
    const db = freshDb();
    const directory = createFakeDirectory();
    /** One replica: its own store adapter, notifier, tail hub and domain over the shared database. */
    const replica = async () => {
      const store = await freshStore(db);
      const notifier: Notifier = createNotifier();
      const hub = createTailHub({ store, logger, now, notifier, pollMs: 200 });
      const domain = createLoggingDomain({ store, notifier, now, directory, tail: hub, errorMinStatus: 500 });
      return { hub, domain };
    };
    const a = await replica();
    const b = await replica();
    const onA = recordStream((signal) => a.domain.tail(callers.admin(), {}, signal));
    const onB = recordStream((signal) => b.domain.tail(callers.admin(), {}, signal));
    onTestFinished(async () => { await Promise.all([onA.close(), onB.close()]); });
    await until(() => a.hub.subscribers === 1 && b.hub.subscribers === 1, "subscriptions on both replicas");

    const started = performance.now();
    await a.domain.ingestOne(undefined, makeLogInput({ requestId: "via-a" }));
    const [gotA, gotB] = await Promise.all([
      onA.waitFor((e) => e.requestId === "via-a", { timeoutMs: 1_000 }),
      onB.waitFor((e) => e.requestId === "via-a", { timeoutMs: 1_000 }),
    ]);
    expect(Math.max(gotA.at, gotB.at) - started).toBeLessThan(1_000);
    expect([idsOf(onA), idsOf(onB)]).toEqual([["via-a"], ["via-a"]]);
  });

  it("delivers a record that becomes visible late (ingested up to the overlap ago) once, never twice", async () => {
    const store = await freshStore();
    const notifier = createNotifier();
    const hub = createTailHub({ store, logger, now, notifier, pollMs: 20, overlapMs: 3_000 });
    const rec = await subscribeAll(hub);

    await storeDirectly(store, makeLogEntry({ requestId: "first", ingestedAt: at(2_500) }));
    await rec.waitFor((e) => e.requestId === "first", { timeoutMs: 1_000 });
    // Stamped 1.5 s before the newest record seen, committed only now (a slow replica).
    await storeDirectly(store, makeLogEntry({ requestId: "late", ingestedAt: at(1_000) }));
    await rec.waitFor((e) => e.requestId === "late", { timeoutMs: 1_000 });
    await sleep(150); // several more polls, each reading "late" again inside the overlap window
    await storeDirectly(store, makeLogEntry({ requestId: "marker", ingestedAt: at(2_600) }));
    await rec.waitFor((e) => e.requestId === "marker", { timeoutMs: 1_000 });
    expect(idsOf(rec)).toEqual(["first", "late", "marker"]);
  });

  it("fails a subscriber that falls more than maxBuffered records behind with RESOURCE_EXHAUSTED, after the buffered ones", async () => {
    const store = await freshStore();
    const notifier = createNotifier();
    const hub = createTailHub({ store, logger, now, notifier, pollMs: 20, maxBuffered: 3 });
    const ctrl = new AbortController();
    onTestFinished(() => ctrl.abort());
    const iterator = hub.subscribe(() => true, ctrl.signal);
    const first = iterator.next(); // subscribes, then waits without reading further
    await until(() => hub.subscribers === 1, "the subscription");

    await storeDirectly(store, ...Array.from({ length: 10 }, (_, i) => makeLogEntry({ requestId: `slow-${i}`, ingestedAt: at(i) })));
    const delivered = [(await first).value?.requestId];
    const err = await rejectionOf((async () => {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        delivered.push(next.value.requestId);
      }
    })());
    expect({ code: err.code, delivered }).toEqual({ code: Code.ResourceExhausted, delivered: ["slow-0", "slow-1", "slow-2"] });
    expect(hub.subscribers).toBe(0);
  });

  it("keeps delivering after more than 5000 records were ingested within the overlap window", { timeout: 30_000 }, async () => {
    const store = await freshStore();
    const notifier = createNotifier();
    const hub = createTailHub({ store, logger, now, notifier, pollMs: 20 });
    const rec = await subscribeAll(hub);

    // A burst (20 000 records/s is the ingest target: 5 001 records take a quarter of a second).
    const burst = Array.from({ length: 5_001 }, (_, i) => makeLogEntry({ requestId: `burst-${String(i).padStart(5, "0")}`, ingestedAt: at(1) }));
    await storeDirectly(store, ...burst);
    await storeDirectly(store, makeLogEntry({ requestId: "after-burst", ingestedAt: at(2) }));
    await rec.waitFor((e) => e.requestId === "after-burst", { timeoutMs: 10_000 });
    expect(rec.received).toHaveLength(5_002);
  });

  it("keeps delivering after polls of the store failed", async () => {
    const store = await freshStore();
    let failures = 3;
    const failFirst = <A extends unknown[], R>(read: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
      if (failures > 0) {
        failures--;
        throw new ConnectError("document database unavailable", Code.Unavailable);
      }
      return read(...args);
    };
    // Whichever read the hub polls with fails three times first.
    const flaky: LogStore = { ...store, readAfter: failFirst(store.readAfter) };
    const hub = createTailHub({ store: flaky, logger, now, notifier: createNotifier(), pollMs: 20 });
    const rec = await subscribeAll(hub);
    await storeDirectly(store, makeLogEntry({ requestId: "after-outage", ingestedAt: at(5) }));
    await rec.waitFor((e) => e.requestId === "after-outage", { timeoutMs: 2_000 });
    expect(failures).toBe(0);
  });

  it("does not deliver records ingested before the subscription", async () => {
    const store = await freshStore();
    await storeDirectly(store, makeLogEntry({ requestId: "old", ingestedAt: at(-1) }));
    const hub = createTailHub({ store, logger, now, notifier: createNotifier(), pollMs: 20 });
    const rec = await subscribeAll(hub);
    await storeDirectly(store, makeLogEntry({ requestId: "new", ingestedAt: at(0) }));
    await rec.waitFor((e) => e.requestId === "new", { timeoutMs: 1_000 });
    expect(idsOf(rec)).toEqual(["new"]);
  });

  it("delivers to each subscriber only what its filter accepts", async () => {
    const store = await freshStore();
    const hub = createTailHub({ store, logger, now, notifier: createNotifier(), pollMs: 20 });
    const odd = recordStream((signal) => hub.subscribe((e) => e.statusCode % 2 === 1, signal));
    onTestFinished(() => odd.close());
    const all = await subscribeAll(hub);
    await until(() => hub.subscribers === 2, "both subscriptions");
    await storeDirectly(store,
      makeLogEntry({ requestId: "s200", statusCode: 200, ingestedAt: at(1) }),
      makeLogEntry({ requestId: "s201", statusCode: 201, ingestedAt: at(2) }),
      makeLogEntry({ requestId: "s503", statusCode: 503, ingestedAt: at(3) }),
    );
    await all.waitForCount(3, 1_000);
    await odd.waitFor((e) => e.requestId === "s503", { timeoutMs: 1_000 });
    expect([idsOf(all), odd.received.map((r) => r.message.requestId)]).toEqual([["s200", "s201", "s503"], ["s201", "s503"]]);
  });

  it("counts open subscriptions and drops a subscription once it is aborted", async () => {
    const store = await freshStore();
    const hub = createTailHub({ store, logger, now, notifier: createNotifier(), pollMs: 20 });
    const one = await subscribeAll(hub);
    await subscribeAll(hub);
    expect(hub.subscribers).toBe(2);
    await one.close();
    expect(hub.subscribers).toBe(1);
  });
});

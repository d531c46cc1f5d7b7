import { randomUUID } from "node:crypto";
import { MongoClient } from "mongodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createNotifier } from "../../../lib/event-feed.js";
import { createLogger } from "../../../lib/logger.js";
import type { LogEntry } from "../../../lib/request-log.js";
import type { DocumentDb } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { openDocumentDb } from "../../../lib/stores/open-documents.js";
import { describeWithServer, uniqueSchema } from "../../../test/support/integration.js";
import { createAlertStore, type AlertRuleRecord, type AlertStore } from "../storage/alerts.js";
import { createHealthStore, type HealthStore } from "../storage/health.js";
import { createRollupStore, type RollupStore } from "../storage/rollups.js";
import { createAlertEvaluator, type AlertEvaluatorOptions } from "./alerts-evaluator.js";
import { rollUp } from "./rollup.js";

// Fake clock, mid-minute so windows cut through rollup minutes as in production.
let t = new Date("2026-01-01T01:00:30Z");
const now = () => t;
const advance = (seconds: number) => {
  t = new Date(t.getTime() + seconds * 1_000);
};
const ago = (seconds: number) => new Date(t.getTime() - seconds * 1_000);

const logger = createLogger({ service: "analytics", level: "silent" });

let db: DocumentDb;
let alerts: AlertStore;
let rollups: RollupStore;
let health: HealthStore;
let notified: number;

beforeEach(async () => {
  t = new Date("2026-01-01T01:00:30Z");
  db = createEmbeddedDocumentDb();
  alerts = createAlertStore(db);
  rollups = createRollupStore(db);
  health = createHealthStore(db);
  await Promise.all([alerts.prepare(), rollups.prepare(), health.prepare()]);
  notified = 0;
});
afterEach(async () => {
  await db.close();
});

function evaluator(overrides: Partial<AlertEvaluatorOptions> = {}) {
  const notifier = { ...createNotifier(), notify: () => { notified++; } };
  return createAlertEvaluator({ alerts, rollups, health, now, logger, notifier, ...overrides });
}

function makeEntry(overrides: Partial<LogEntry> = {}): LogEntry {
  return {
    requestId: randomUUID(), traceId: "trace", spanId: "span", timestamp: ago(60), method: "GET",
    path: "/api/v1/projects/42", route: "/api/v1/projects/{id}", statusCode: 200, latency: 10, ip: "127.0.0.1",
    userAgent: "test", userId: "alice", projectId: "p1", apiKeyId: "", cacheStatus: "", rateLimited: false,
    upstreamService: "project", bytesIn: 0, bytesOut: 0, errorCode: "", ingestedAt: t, ...overrides,
  };
}

const seed = (entries: LogEntry[], into: RollupStore = rollups) => into.apply(rollUp(entries));
const entries = (n: number, overrides: (i: number) => Partial<LogEntry> = () => ({})) =>
  Array.from({ length: n }, (_, i) => makeEntry(overrides(i)));

async function rule(overrides: Partial<AlertRuleRecord> = {}, into: AlertStore = alerts): Promise<AlertRuleRecord> {
  const r: AlertRuleRecord = {
    id: randomUUID(), projectId: "p1", name: "rule", service: "", route: "", metric: "request_count", windowSeconds: 300,
    threshold: 5, operator: "gt", coolDownSeconds: 600, severity: "warning", enabled: true, createdAt: t, updatedAt: t, ...overrides,
  };
  await into.insertRule(r);
  return r;
}

describe("alert evaluator: metrics", () => {
  it("fires request_count over its threshold with the rule's fields copied", async () => {
    await seed(entries(10));
    const r = await rule({ name: "busy", severity: "critical" });
    const [event, ...more] = await evaluator().runOnce();
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      ruleId: r.id, ruleName: "busy", projectId: "p1", severity: "critical", metric: "request_count", value: 10,
      threshold: 5, operator: "gt", message: "request_count 10 > 5 over 300s", triggeredAt: t, acknowledged: false,
    });
    expect((await alerts.listEvents({ tenants: "all", limit: 10, offset: 0 })).items).toEqual([event]);
    expect(notified).toBe(1);
  });

  it("fires error_rate as the percentage of 5xx answers", async () => {
    await seed(entries(8, (i) => ({ statusCode: i < 3 ? 503 : i < 5 ? 404 : 200 })));
    await rule({ metric: "error_rate", threshold: 5 });
    const [event] = await evaluator().runOnce();
    expect(event?.value).toBe(37.5);
    expect(event?.message).toBe("error_rate 37.5 > 5 over 300s");
  });

  it.each([
    ["latency_p50", 50, 40],
    ["latency_p95", 95, 90],
    ["latency_p99", 99, 97],
  ] as const)("fires %s from the merged latency histogram (≈%i ms)", async (metric, exact, threshold) => {
    // 1..100 ms spread over three minutes and two routes, so several histograms merge.
    await seed(entries(100, (i) => ({ latency: i + 1, timestamp: ago(30 + (i % 3) * 60), route: i % 2 ? "/a" : "/b" })));
    await rule({ metric, threshold, operator: "gte" });
    const [event] = await evaluator().runOnce();
    expect(Math.abs(event!.value - exact) / exact).toBeLessThan(0.05);
  });

  it.each([["latency_p50", 60], ["latency_p95", 100], ["latency_p99", 110]] as const)(
    "does not fire %s under its threshold", async (metric, threshold) => {
      await seed(entries(100, (i) => ({ latency: i + 1 })));
      await rule({ metric, threshold });
      expect(await evaluator().runOnce()).toEqual([]);
    });

  it("fires uptime from the health samples of the rule's service, or of every service", async () => {
    for (const [service, ok] of [["auth", true], ["auth", true], ["auth", true], ["auth", false], ["logging", true]] as const) {
      await health.record({ service, at: ago(100), ok });
    }
    await health.record({ service: "auth", at: ago(400), ok: false }); // outside the window
    const auth = await rule({ metric: "uptime", service: "auth", operator: "lt", threshold: 99 });
    const all = await rule({ metric: "uptime", operator: "lt", threshold: 99 });
    await rule({ metric: "uptime", service: "logging", operator: "lt", threshold: 99 });
    const fired = (await evaluator().runOnce()).sort((x, y) => x.value - y.value);
    expect(fired.map((e) => [e.ruleId, e.value])).toEqual([[auth.id, 75], [all.id, 80]]);
    expect(fired[0]?.message).toBe("uptime 75 < 99 over 300s");
  });
});

describe("alert evaluator: what a rule measures", () => {
  it("counts only the rule's service", async () => {
    await seed([...entries(3, () => ({ upstreamService: "auth" })), ...entries(10, () => ({ upstreamService: "project" }))]);
    await rule({ service: "auth", threshold: 3 });
    const atLeast = await rule({ service: "auth", threshold: 3, operator: "gte" });
    expect((await evaluator().runOnce()).map((e) => [e.ruleId, e.value])).toEqual([[atLeast.id, 3]]);
  });

  it("counts only the rule's route, over every method", async () => {
    await seed([
      ...entries(2, () => ({ method: "GET" })), ...entries(2, () => ({ method: "DELETE" })), ...entries(1, () => ({ method: "PATCH" })),
      ...entries(10, () => ({ route: "/api/v1/projects" })),
    ]);
    await rule({ route: "/api/v1/projects/{id}", threshold: 0 });
    expect((await evaluator().runOnce()).map((e) => e.value)).toEqual([5]);
  });

  it("counts only the rule's project and window", async () => {
    await seed([
      ...entries(3), ...entries(10, () => ({ projectId: "p2" })),
      ...entries(10, () => ({ timestamp: ago(400) })), ...entries(10, () => ({ timestamp: ago(-60) })),
    ]);
    await rule({ threshold: 0 });
    expect((await evaluator().runOnce()).map((e) => e.value)).toEqual([3]);
  });

  it("does not fire under the threshold", async () => {
    await seed(entries(5, () => ({ statusCode: 500 })));
    await rule({ threshold: 5 });
    await rule({ metric: "error_rate", threshold: 100 });
    expect(await evaluator().runOnce()).toEqual([]);
    expect(notified).toBe(0);
  });

  it("does not fire a metric without data, but counts zero requests", async () => {
    for (const metric of ["error_rate", "latency_p50", "latency_p95", "latency_p99", "uptime"] as const) {
      await rule({ metric, operator: "gte", threshold: 0 });
    }
    const silent = await rule({ operator: "lt", threshold: 1 });
    const fired = await evaluator().runOnce();
    expect(fired.map((e) => [e.ruleId, e.value, e.message])).toEqual([[silent.id, 0, "request_count 0 < 1 over 300s"]]);
  });

  it.each([
    ["gt", 10, false], ["gt", 9.5, true], ["gte", 10, true], ["gte", 11, false], ["lt", 10, false], ["lt", 11, true],
    ["lte", 10, true], ["lte", 9, false], ["eq", 10, true], ["eq", 9, false],
  ] as const)("compares with %s %d: fires %s", async (operator, threshold, fires) => {
    await seed(entries(10));
    await rule({ operator, threshold });
    expect((await evaluator().runOnce()).length).toBe(fires ? 1 : 0);
  });

  it("skips disabled rules", async () => {
    await seed(entries(10));
    await rule({ enabled: false });
    expect(await evaluator().runOnce()).toEqual([]);
  });

  it("logs a rule it cannot evaluate and still evaluates the others", async () => {
    await seed(entries(10));
    await rule({ metric: "uptime", operator: "lt", threshold: 100 });
    const counted = await rule();
    const failing = { uptime: () => Promise.reject(new Error("store down")) };
    expect((await evaluator({ health: failing }).runOnce()).map((e) => e.ruleId)).toEqual([counted.id]);
  });
});

describe("alert evaluator: cool-down and replicas", () => {
  it("stays quiet during the cool-down and fires again after it", async () => {
    await seed(entries(10, () => ({ timestamp: ago(30) })));
    await rule({ windowSeconds: 3_600, coolDownSeconds: 300 });
    const ev = evaluator();
    expect(await ev.runOnce()).toHaveLength(1);
    advance(60);
    expect(await ev.runOnce()).toHaveLength(0);
    advance(239);
    expect(await ev.runOnce()).toHaveLength(0);
    advance(1);
    expect(await ev.runOnce()).toHaveLength(1);
    expect((await alerts.listEvents({ tenants: "all", limit: 10, offset: 0 })).total).toBe(2);
  });

  it("fires a rule without cool-down once per evaluation round, not twice in one", async () => {
    await seed(entries(10, () => ({ timestamp: ago(30) })));
    await rule({ windowSeconds: 3_600, coolDownSeconds: 0 });
    const ev = evaluator({ intervalMs: 30_000 });
    expect(await ev.runOnce()).toHaveLength(1);
    expect(await ev.runOnce()).toHaveLength(0);
    advance(30);
    expect(await ev.runOnce()).toHaveLength(1);
  });

  it("fires exactly one event per breach when two replicas evaluate at the same time", async () => {
    await replicasFireOncePerBreach([db, db]);
  });
});

/**
 * Evaluators over the given databases (one per replica) run each round at
 * the same moment; every breaching rule must fire exactly once per round.
 */
async function replicasFireOncePerBreach(dbs: DocumentDb[]): Promise<void> {
  const replicas = dbs.map((d) => ({ alerts: createAlertStore(d), rollups: createRollupStore(d), health: createHealthStore(d) }));
  const first = replicas[0]!;
  await Promise.all([first.alerts.prepare(), first.rollups.prepare(), first.health.prepare()]);
  await seed(entries(10, (i) => ({ timestamp: ago(30), statusCode: i < 5 ? 500 : 200, latency: 100 })), first.rollups);
  const rules = await Promise.all([
    rule({ windowSeconds: 3_600, coolDownSeconds: 60 }, first.alerts),
    rule({ windowSeconds: 3_600, coolDownSeconds: 0, metric: "error_rate", threshold: 10 }, first.alerts),
    rule({ windowSeconds: 3_600, coolDownSeconds: 120, metric: "latency_p95", threshold: 50 }, first.alerts),
  ]);
  const evaluators = replicas.map((r) => evaluator(r));
  for (let round = 1; round <= 3; round++) {
    const fired = (await Promise.all(evaluators.map((e) => e.runOnce()))).flat();
    expect(fired.map((e) => e.ruleId).sort()).toEqual(rules.map((r) => r.id).sort());
    advance(120);
  }
  const stored = await first.alerts.listEvents({ tenants: "all", limit: 100, offset: 0 });
  expect(stored.total).toBe(9);
  expect(stored.items.map((e) => e.seq)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
}

// Replicas on separate connections to a real server (FerretDB in CI), where
// only inserts against a unique key are atomic across connections.
describeWithServer("TEST_MONGO_URL", "alert evaluator on MongoDB", (url) => {
  const dbName = uniqueSchema("alerts");
  const opened: DocumentDb[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 4; i++) opened.push(await openDocumentDb({ url, dbName }));
  });
  afterAll(async () => {
    for (const d of opened) await d.close();
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.db(dbName).dropDatabase();
    } finally {
      await client.close();
    }
  });

  it("fires exactly one event per breach when four replicas evaluate at the same time", async () => {
    await replicasFireOncePerBreach(opened);
  });

  it("numbers events from concurrent replicas strictly increasing without gaps", async () => {
    const stores = opened.map((d) => createAlertStore(d));
    const before = await stores[0]!.latestSeq();
    const stored = await Promise.all(stores.flatMap((s) => Array.from({ length: 5 }, () => s.insertEvent({
      id: randomUUID(), ruleId: "r", ruleName: "r", projectId: "p1", severity: "info", metric: "request_count", value: 1,
      threshold: 0, operator: "gt", message: "m", triggeredAt: t, acknowledged: false, acknowledgedBy: "", acknowledgeNote: "",
    }))));
    expect(stored.map((e) => e.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => before + i + 1));
  });
});

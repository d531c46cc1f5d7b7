import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { timestampDate, timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, type Client } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  AnalyticsService, type AlertEvent, type AlertRule, type CreateAlertRuleRequest, type WatchAlertEventsResponse,
} from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { fieldViolationsOf } from "../../lib/errors.js";
import { identityHeaders } from "../../lib/identity.js";
import { addToSketch, estimate, type Sketch } from "../../services/analytics/domain/hll.js";
import {
  ALERT_INTERVAL_MS, eventually, nearestRank, normal, rawServerStream, ROLLUP_INTERVAL_MS, seededRandom, startAnalyticsHarness,
  type AnalyticsHarness, type LogRecordInit,
} from "../support/analytics-harness.js";
import { healthCheck, reflectServices } from "../support/grpc-generic.js";
import { describeWithServer } from "../support/integration.js";
import { as, recordStream, type StreamRecorder } from "../support/project-harness.js";
import { rejectionOf } from "../support/rejection.js";

type AnalyticsClient = Client<typeof AnalyticsService>;
type RuleInit = Partial<Omit<CreateAlertRuleRequest, "$typeName">>;

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

// Who owns what (the ProjectDirectory fake): alice p-alpha (traffic) and
// p-rules (rules only, no traffic); bob p-beta.
const OWNED = { alice: ["p-alpha", "p-rules"], bob: ["p-beta"] };
const alice = as("alice");
const bob = as("bob");
const admin = as("root", ["user", "admin"]);
const betaKey = { headers: identityHeaders({ userId: "bob", projectId: "p-beta", apiKeyId: "key-b1" }) };

// ---------------------------------------------------------------------------
// A known, seeded data set and the figures it must produce
// ---------------------------------------------------------------------------

/** One request of the data set, in the fields the figures depend on. */
interface Row {
  requestId: string;
  timestamp: Date;
  projectId: string;
  userId: string;
  apiKeyId: string;
  method: string;
  route: string;
  path: string;
  statusCode: number;
  latency: number;
  cacheStatus: string;
  rateLimited: boolean;
  upstreamService: string;
}

const ENDPOINTS: [method: string, route: string, path: string, weight: number][] = [
  ["GET", "/api/v1/projects/{id}", "/api/v1/projects/42", 40], ["POST", "/api/v1/projects", "/api/v1/projects", 15],
  ["GET", "/api/v1/logs", "/api/v1/logs", 20], ["DELETE", "/api/v1/projects/{id}", "/api/v1/projects/7", 10], ["GET", "", "/nope", 15],
];

/**
 * `n` requests stamped between 5 and 90 s before `now` (inside any 300 s
 * alert window for a while): 45 % for p-alpha, 35 % for p-beta, 10 % by alice
 * or carol without a project, 10 % anonymous; ~12 % answered 5xx, 3 % rate
 * limited; latencies lognormal (median 35 ms) with a 5 % Pareto tail.
 */
function makeTraffic(seed: number, n: number, now: Date): Row[] {
  const random = seededRandom(seed);
  const tag = randomUUID().slice(0, 8);
  const totalWeight = ENDPOINTS.reduce((s, e) => s + e[3], 0);
  return Array.from({ length: n }, (_, i): Row => {
    const who = random();
    const [projectId, userId, apiKeyId] = who < 0.45
      ? ["p-alpha", random() < 0.1 ? "" : `u${Math.floor(random() * 12)}`, random() < 0.3 ? "key-a1" : ""]
      : who < 0.8
        ? ["p-beta", random() < 0.1 ? "" : `u${8 + Math.floor(random() * 12)}`, ((k) => (k < 0.5 ? "key-b1" : k < 0.7 ? "key-b2" : ""))(random())]
        : who < 0.9 ? ["", random() < 0.5 ? "alice" : "carol", ""] : ["", "", ""];
    let w = random() * totalWeight;
    const [method, route, path] = ENDPOINTS.find((e) => (w -= e[3]) < 0) ?? ENDPOINTS[0]!;
    const rateLimited = random() < 0.03;
    const s = random();
    const statusCode = rateLimited ? 429 : s < 0.08 ? 500 : s < 0.12 ? 503 : s < 0.17 ? 404 : 200;
    const latency = random() < 0.95 ? Math.exp(Math.log(35) + normal(random)) : 200 / (1 - random()) ** (1 / 1.4);
    const c = random();
    const cacheStatus = method !== "GET" ? "" : c < 0.35 ? "HIT" : c < 0.6 ? "MISS" : c < 0.7 ? "BYPASS" : "";
    const upstreamService = route.startsWith("/api/v1/logs") ? "logging" : route ? "project" : "";
    const timestamp = new Date(now.getTime() - 5_000 - Math.floor(random() * 85_000));
    return { requestId: `e2e-${tag}-${i}`, timestamp, projectId, userId, apiKeyId, method, route, path, statusCode, latency, cacheStatus, rateLimited, upstreamService };
  });
}

const recordOf = (r: Row): LogRecordInit => ({ ...r, timestamp: timestampFromDate(r.timestamp), traceId: "", spanId: "", ip: "10.0.0.1", userAgent: "e2e" });

/** Which rows a caller may see (as tenantOf and the read scope define it). */
const SCOPES = {
  admin: (_: Row) => true,
  alice: (r: Row) => r.projectId === "p-alpha" || (r.projectId === "" && r.userId === "alice"),
  bob: (r: Row) => r.projectId === "p-beta" || (r.projectId === "" && r.userId === "bob"),
  betaKey: (r: Row) => r.projectId === "p-beta",
};

const errorRate = (errors: number, count: number) => (count > 0 ? (errors / count) * 100 : 0);
const isError = (r: Row) => r.statusCode >= 500;

function expectedSummary(rows: readonly Row[]) {
  const sorted = rows.map((r) => r.latency).sort((a, b) => a - b);
  const hits = rows.filter((r) => r.cacheStatus === "HIT").length;
  const misses = rows.filter((r) => r.cacheStatus === "MISS").length;
  const errors = rows.filter(isError).length;
  return {
    totalRequests: rows.length, totalErrors: errors, errorRate: errorRate(errors, rows.length),
    avgLatency: rows.length ? sorted.reduce((a, b) => a + b, 0) / rows.length : 0,
    p50: nearestRank(sorted, 0.5), p95: nearestRank(sorted, 0.95), p99: nearestRank(sorted, 0.99),
    uniqueUsers: new Set(rows.map((r) => r.userId).filter(Boolean)).size,
    usersSketchEstimate: estimate(rows.reduce((s: Sketch, r) => { if (r.userId) addToSketch(s, r.userId); return s; }, {})),
    cacheHitRatio: hits + misses ? hits / (hits + misses) : 0, rateLimited: rows.filter((r) => r.rateLimited).length,
  };
}

/** Rows grouped by `keyOf` (rows it maps to "" left out), ranked as the service ranks: most first, ties by key. */
function ranked(rows: readonly Row[], keyOf: (r: Row) => string): { key: string; rows: Row[] }[] {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = keyOf(r);
    if (key) groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups].map(([key, g]) => ({ key, rows: g })).sort((a, b) => b.rows.length - a.rows.length || (a.key < b.key ? -1 : 1));
}

/** Counts of rows per bucket start (ms) of `step`. */
function perBucket(rows: readonly Row[], step: number): Map<number, { count: number; errors: number }> {
  const out = new Map<number, { count: number; errors: number }>();
  for (const r of rows) {
    const start = Math.floor(r.timestamp.getTime() / step) * step;
    const b = out.get(start) ?? { count: 0, errors: 0 };
    b.count++;
    if (isError(r)) b.errors++;
    out.set(start, b);
  }
  return out;
}

const relativeError = (actual: number, exact: number) => Math.abs(actual - exact) / exact;
const expectWithin5Percent = (actual: number, exact: number, what: string) =>
  expect(relativeError(actual, exact), `${what}: ${actual} vs exact ${exact}`).toBeLessThan(0.05);

/** Code and violated fields of a failed call. */
async function failure(call: Promise<unknown>): Promise<{ code: Code; fields: string[] }> {
  const err = await rejectionOf(call);
  return { code: err.code, fields: fieldViolationsOf(err).map((v) => v.field).sort() };
}

/** Aborts the stream when the test ends, passed or failed. */
function track<T>(rec: StreamRecorder<T>): StreamRecorder<T> {
  onTestFinished(() => rec.close());
  return rec;
}

const ruleInput = (overrides: RuleInit = {}): RuleInit => ({
  projectId: "p-rules", name: "slow rules", metric: "latency_p99", windowSeconds: 300, threshold: 100_000, operator: "gt",
  coolDownSeconds: 600, severity: "warning", ...overrides,
});

/** Waits (bounded) until the admin's summary over `window` counts `n` requests; the logging service hands records out 2 s after ingest. */
async function waitForRollups(client: AnalyticsClient, window: { from: Date; to: Date }, n: number): Promise<void> {
  await eventually(async () => {
    const s = await client.getSummary({ from: timestampFromDate(window.from), to: timestampFromDate(window.to) }, admin);
    if (s.totalRequests > n) throw new Error(`counted ${s.totalRequests} requests, more than the ${n} ingested`);
    return s.totalRequests === n ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200, what: `rolling up ${n} requests` });
}

function analyticsSuite(store: string, mongoUrl: () => string | undefined) {
  describe(`analytics service over gRPC (${store})`, () => {
    let h: AnalyticsHarness;
    let rows: Row[];
    let client: AnalyticsClient;
    /** A window holding every row, well inside 1440 buckets by minute. */
    let span: { from: Date; to: Date };
    const ts = (d: Date) => timestampFromDate(d);
    const inSpan = (projectId = "") => ({ from: ts(span.from), to: ts(span.to), projectId });

    beforeAll(async () => {
      h = await startAnalyticsHarness({ mongoUrl: mongoUrl(), owned: OWNED });
      client = h.analytics.client;
      const now = new Date();
      // One ingest batch: every record gets one ingest time, so one rollup round
      // takes them all (later rounds updating rollups: "rollups under continued traffic").
      rows = makeTraffic(20_260_310, 1_000, now);
      span = { from: new Date(Math.floor((now.getTime() - 10 * MINUTE) / MINUTE) * MINUTE), to: new Date(Math.ceil((now.getTime() + MINUTE) / MINUTE) * MINUTE) };
      await h.ingest(rows.map(recordOf));
      await waitForRollups(client, span, rows.length);
    }, 90_000);
    afterAll(() => h?.stop());

    describe("generic gRPC", () => {
      it("reports SERVING through grpc.health.v1 for the server and the analytics service", async () => {
        expect(await healthCheck(h.analytics.address, "")).toBe("SERVING");
        expect(await healthCheck(h.analytics.address, "mesh.analytics.v1.AnalyticsService")).toBe("SERVING");
      });

      it("lists mesh.analytics.v1.AnalyticsService through grpc.reflection.v1", async () => {
        expect(await reflectServices(h.analytics.address)).toEqual(expect.arrayContaining(["mesh.analytics.v1.AnalyticsService", "grpc.health.v1.Health"]));
      });

      const anonymousCalls: [string, (c: AnalyticsClient) => Promise<unknown>][] = [
        ["GetSummary", (c) => c.getSummary({})],
        ["GetRequestsOverTime", (c) => c.getRequestsOverTime({})],
        ["GetErrorRate", (c) => c.getErrorRate({})],
        ["GetLatency", (c) => c.getLatency({})],
        ["GetTopEndpoints", (c) => c.getTopEndpoints({})],
        ["GetTopUsers", (c) => c.getTopUsers({})],
        ["GetApiKeyUsage", (c) => c.getApiKeyUsage({})],
        ["CreateAlertRule", (c) => c.createAlertRule(ruleInput())],
        ["ListAlertRules", (c) => c.listAlertRules({})],
        ["GetAlertRule", (c) => c.getAlertRule({ id: randomUUID() })],
        ["UpdateAlertRule", (c) => c.updateAlertRule({ id: randomUUID(), ...ruleInput() })],
        ["DeleteAlertRule", (c) => c.deleteAlertRule({ id: randomUUID() })],
        ["ListAlertEvents", (c) => c.listAlertEvents({})],
        ["AcknowledgeAlertEvent", (c) => c.acknowledgeAlertEvent({ id: randomUUID() })],
        ["WatchAlertEvents", async (c) => {
          for await (const m of c.watchAlertEvents({}, { signal: AbortSignal.timeout(5_000) })) void m;
        }],
      ];
      it.each(anonymousCalls)("answers %s without identity metadata with UNAUTHENTICATED", async (_name, call) => {
        expect((await failure(call(client))).code).toBe(Code.Unauthenticated);
      });

      it("answers WatchAlertEvents without identity metadata with UNAUTHENTICATED to a plain grpc-js client", async () => {
        const res = await rawServerStream(h.analytics.address, AnalyticsService.method.watchAlertEvents, {});
        expect([res.code, res.messages]).toEqual([grpc.status.UNAUTHENTICATED, []]);
      });
    });

    describe("figures", () => {
      it("answers the summary: counts exact, percentiles within 5 % of the raw data's", async () => {
        const e = expectedSummary(rows);
        const s = await client.getSummary(inSpan(), admin);
        expect({ total: s.totalRequests, errors: s.totalErrors, rateLimited: s.rateLimited })
          .toEqual({ total: e.totalRequests, errors: e.totalErrors, rateLimited: e.rateLimited });
        expect(s.errorRate).toBeCloseTo(e.errorRate, 9);
        expect(s.cacheHitRatio).toBeCloseTo(e.cacheHitRatio, 9);
        expect(s.avgLatency).toBeCloseTo(e.avgLatency, 6);
        // Exactly the sketch of the distinct users, however minutes and tenants were merged; HLL's own precision is hll.test.ts's.
        expect(s.uniqueUsers).toBe(e.usersSketchEstimate);
        expect(Math.abs(s.uniqueUsers - e.uniqueUsers)).toBeLessThanOrEqual(Math.max(1, 0.1 * e.uniqueUsers));
        expectWithin5Percent(s.p50Latency, e.p50, "p50");
        expectWithin5Percent(s.p95Latency, e.p95, "p95");
        expectWithin5Percent(s.p99Latency, e.p99, "p99");
      });

      it("answers requests per minute, zero-filled, on UTC minutes, oldest first", async () => {
        const { buckets } = await client.getRequestsOverTime({ ...inSpan(), interval: "minute" }, admin);
        const expected = perBucket(rows, MINUTE);
        expect(buckets.map((b) => timestampMs(b.start!))).toEqual(
          Array.from({ length: (span.to.getTime() - span.from.getTime()) / MINUTE }, (_, i) => span.from.getTime() + i * MINUTE));
        expect(buckets.map((b) => b.count)).toEqual(buckets.map((b) => expected.get(timestampMs(b.start!))?.count ?? 0));
        expect(buckets.some((b) => b.count === 0)).toBe(true);
      });

      it.each([["hour", HOUR, 3 * HOUR], ["day", DAY, 3 * DAY]] as const)("answers requests per %s on UTC boundaries", async (interval, step, back) => {
        const from = new Date(span.to.getTime() - back);
        const { buckets } = await client.getRequestsOverTime({ from: ts(from), to: ts(span.to), interval }, admin);
        const expected = perBucket(rows, step);
        expect(buckets.length).toBeGreaterThanOrEqual(3);
        for (const b of buckets) expect(timestampMs(b.start!) % step).toBe(0);
        expect(buckets.map((b) => b.count)).toEqual(buckets.map((b) => expected.get(timestampMs(b.start!))?.count ?? 0));
        expect(buckets.reduce((s, b) => s + b.count, 0)).toBe(rows.length);
      });

      it("answers the error rate of the window and per minute", async () => {
        const res = await client.getErrorRate({ ...inSpan(), interval: "minute" }, admin);
        const expected = perBucket(rows, MINUTE);
        expect(res.errorRate).toBeCloseTo(expectedSummary(rows).errorRate, 9);
        for (const b of res.buckets) {
          const e = expected.get(timestampMs(b.start!)) ?? { count: 0, errors: 0 };
          expect({ count: b.count, errors: b.errors }).toEqual(e);
          expect(b.errorRate).toBeCloseTo(errorRate(e.errors, e.count), 9);
        }
      });

      it("answers latency percentiles within 5 % of the raw data's, and the exact mean", async () => {
        const e = expectedSummary(rows);
        const l = await client.getLatency(inSpan(), admin);
        expect(l.avg).toBeCloseTo(e.avgLatency, 6);
        expectWithin5Percent(l.p50, e.p50, "p50");
        expectWithin5Percent(l.p95, e.p95, "p95");
        expectWithin5Percent(l.p99, e.p99, "p99");
      });

      it("ranks the top endpoints with exact counts, error rates and means, p95 within 5 %", async () => {
        const { items } = await client.getTopEndpoints({ ...inSpan(), limit: 3 }, admin);
        const expected = ranked(rows, (r) => `${r.method} ${r.route || "(unmatched)"}`).slice(0, 3);
        expect(items.map((i) => `${i.method} ${i.path}`)).toEqual(expected.map((g) => g.key));
        items.forEach((item, i) => {
          const g = expected[i]!.rows;
          const sorted = g.map((r) => r.latency).sort((a, b) => a - b);
          expect(item.count).toBe(g.length);
          expect(item.errorRate).toBeCloseTo(errorRate(g.filter(isError).length, g.length), 9);
          expect(item.avgLatency).toBeCloseTo(sorted.reduce((a, b) => a + b, 0) / g.length, 6);
          expectWithin5Percent(item.p95Latency, nearestRank(sorted, 0.95), `p95 of ${expected[i]!.key}`);
        });
      });

      it("ranks the top users, 10 by default, leaving out requests without a user", async () => {
        const { items } = await client.getTopUsers(inSpan(), admin);
        const expected = ranked(rows, (r) => r.userId).slice(0, 10);
        expect(items.map((i) => [i.userId, i.count])).toEqual(expected.map((g) => [g.key, g.rows.length]));
        items.forEach((item, i) => expect(item.errorRate).toBeCloseTo(errorRate(expected[i]!.rows.filter(isError).length, expected[i]!.rows.length), 9));
      });

      it("answers API-key usage with project, counts, errors and the latest use", async () => {
        const { items } = await client.getApiKeyUsage(inSpan(), admin);
        const expected = ranked(rows, (r) => r.apiKeyId);
        expect(items.map((i) => ({ key: i.apiKeyId, project: i.projectId, count: i.count, errors: i.errors, last: timestampDate(i.lastUsedAt!) })))
          .toEqual(expected.map((g) => ({
            key: g.key, project: g.rows[0]!.projectId, count: g.rows.length, errors: g.rows.filter(isError).length,
            last: new Date(Math.max(...g.rows.map((r) => r.timestamp.getTime()))),
          })));
      });

      it.each([["alice", alice, SCOPES.alice], ["bob", bob, SCOPES.bob], ["bob's API key", betaKey, SCOPES.betaKey]] as const)(
        "scopes the figures to what %s may see", async (_who, caller, scope) => {
          const visible = rows.filter(scope);
          const s = await client.getSummary(inSpan(), caller);
          expect([s.totalRequests, s.totalErrors]).toEqual([visible.length, visible.filter(isError).length]);
          const { items } = await client.getTopUsers({ ...inSpan(), limit: 100 }, caller);
          expect(items.map((i) => [i.userId, i.count])).toEqual(ranked(visible, (r) => r.userId).map((g) => [g.key, g.rows.length]));
          const keys = await client.getApiKeyUsage({ ...inSpan(), limit: 100 }, caller);
          expect(keys.items.map((i) => i.apiKeyId)).toEqual(ranked(visible, (r) => r.apiKeyId).map((g) => g.key));
        });

      it("narrows to project_id, and answers zeros for a project outside the caller's scope", async () => {
        expect((await client.getSummary(inSpan("p-beta"), admin)).totalRequests).toBe(rows.filter((r) => r.projectId === "p-beta").length);
        expect((await client.getSummary(inSpan("p-alpha"), alice)).totalRequests).toBe(rows.filter((r) => r.projectId === "p-alpha").length);
        const outside = await client.getSummary(inSpan("p-beta"), alice);
        expect([outside.totalRequests, outside.p99Latency, outside.uniqueUsers]).toEqual([0, 0, 0]);
        expect((await client.getTopEndpoints(inSpan("p-alpha"), betaKey)).items).toEqual([]);
        const { buckets } = await client.getRequestsOverTime({ ...inSpan("p-beta"), interval: "minute" }, alice);
        expect(buckets.length).toBeGreaterThan(0);
        expect(buckets.every((b) => b.count === 0)).toBe(true);
      });

      const invalid: [string, (c: AnalyticsClient) => Promise<unknown>, string[]][] = [
        ["from not before to", (c) => c.getSummary({ from: ts(span.to), to: ts(span.from) }, admin), ["from"]],
        ["an unknown interval", (c) => c.getRequestsOverTime({ ...inSpan(), interval: "week" }, admin), ["interval"]],
        ["more than 1440 buckets", (c) => c.getErrorRate({ from: ts(new Date(span.to.getTime() - 2 * DAY)), to: ts(span.to), interval: "minute" }, admin), ["interval"]],
        ["a limit over 100", (c) => c.getTopEndpoints({ ...inSpan(), limit: 101 }, admin), ["limit"]],
        ["a negative limit", (c) => c.getApiKeyUsage({ ...inSpan(), limit: -1 }, admin), ["limit"]],
      ];
      it.each(invalid)("rejects %s with INVALID_ARGUMENT naming the field", async (_what, call, fields) => {
        expect(await failure(call(client))).toEqual({ code: Code.InvalidArgument, fields });
      });

      it("rejects a bad severity filter on WatchAlertEvents with INVALID_ARGUMENT naming severity", async () => {
        const watch = async () => {
          for await (const m of client.watchAlertEvents({ severity: "fatal" }, { ...alice, signal: AbortSignal.timeout(5_000) })) void m;
        };
        expect(await failure(watch())).toEqual({ code: Code.InvalidArgument, fields: ["severity"] });
      });
    });

    describe("alert rules", () => {
      it("creates a rule with the fields given, enabled by default, with id and timestamps", async () => {
        const { rule } = await client.createAlertRule(ruleInput({ name: "p99 high", service: "project", route: "/api/v1/projects/{id}" }), alice);
        expect(rule).toMatchObject({
          projectId: "p-rules", name: "p99 high", service: "project", route: "/api/v1/projects/{id}", metric: "latency_p99",
          windowSeconds: 300, threshold: 100_000, operator: "gt", coolDownSeconds: 600, severity: "warning", enabled: true,
        });
        expect(rule!.id).not.toBe("");
        expect(timestampMs(rule!.updatedAt!)).toBe(timestampMs(rule!.createdAt!));
      });

      it("gets a rule as created", async () => {
        const { rule } = await client.createAlertRule(ruleInput({ enabled: false }), alice);
        expect((await client.getAlertRule({ id: rule!.id }, alice)).rule).toEqual(rule);
      });

      it("lists a project's rules oldest first with the total, page by page", async () => {
        const mine: AlertRule[] = [];
        for (let i = 0; i < 3; i++) mine.push((await client.createAlertRule(ruleInput({ name: `list ${i}` }), alice)).rule!);
        const all = await client.listAlertRules({ projectId: "p-rules", limit: 100 }, alice);
        const ids = all.rules.map((r) => r.id);
        expect(ids.filter((id) => mine.some((m) => m.id === id))).toEqual(mine.map((m) => m.id));
        expect(all.total).toBe(all.rules.length);
        const page = await client.listAlertRules({ projectId: "p-rules", limit: 1, offset: 1 }, alice);
        expect([page.rules.map((r) => r.id), page.total, page.limit, page.offset]).toEqual([[ids[1]], all.total, 1, 1]);
      });

      it("replaces every editable field on update, keeping id, project and creation time", async () => {
        const { rule } = await client.createAlertRule(ruleInput(), alice);
        const { rule: updated } = await client.updateAlertRule({
          id: rule!.id, name: "renamed", service: "", route: "", metric: "request_count", windowSeconds: 600, threshold: 1e9,
          operator: "gte", coolDownSeconds: 0, severity: "critical", enabled: false,
        }, alice);
        expect(updated).toMatchObject({
          id: rule!.id, projectId: "p-rules", name: "renamed", metric: "request_count", windowSeconds: 600, threshold: 1e9,
          operator: "gte", coolDownSeconds: 0, severity: "critical", enabled: false, createdAt: rule!.createdAt,
        });
        expect((await client.getAlertRule({ id: rule!.id }, alice)).rule).toEqual(updated);
      });

      it("deletes a rule, after which it is NOT_FOUND", async () => {
        const { rule } = await client.createAlertRule(ruleInput(), alice);
        await client.deleteAlertRule({ id: rule!.id }, alice);
        expect((await failure(client.getAlertRule({ id: rule!.id }, alice))).code).toBe(Code.NotFound);
        expect((await failure(client.deleteAlertRule({ id: rule!.id }, alice))).code).toBe(Code.NotFound);
      });

      it("rejects bad rule fields with INVALID_ARGUMENT naming every one", async () => {
        const bad = ruleInput({ name: "", metric: "cpu", operator: "ne", windowSeconds: 30, coolDownSeconds: -1, severity: "fatal", service: "billing" });
        expect(await failure(client.createAlertRule(bad, alice))).toEqual({
          code: Code.InvalidArgument, fields: ["cool_down_seconds", "metric", "name", "operator", "service", "severity", "window_seconds"],
        });
      });

      it("rejects bad fields on update like on create", async () => {
        const { rule } = await client.createAlertRule(ruleInput(), alice);
        expect(await failure(client.updateAlertRule({ ...ruleInput({ windowSeconds: 86_401, threshold: 1 }), id: rule!.id, severity: "" }, alice)))
          .toEqual({ code: Code.InvalidArgument, fields: ["severity", "window_seconds"] });
      });

      it("answers another user's rule with NOT_FOUND and a project of theirs too", async () => {
        const { rule } = await client.createAlertRule(ruleInput(), alice);
        expect((await failure(client.getAlertRule({ id: rule!.id }, bob))).code).toBe(Code.NotFound);
        expect((await failure(client.updateAlertRule({ ...ruleInput(), id: rule!.id }, bob))).code).toBe(Code.NotFound);
        expect((await failure(client.deleteAlertRule({ id: rule!.id }, bob))).code).toBe(Code.NotFound);
        expect((await failure(client.createAlertRule(ruleInput(), bob))).code).toBe(Code.NotFound);
      });
    });

    describe("alert events", () => {
      /**
       * Makes sure a watcher is live: creates a probe rule that fires at
       * once (request_count ≥ 0, severity info) and waits for its event.
       */
      async function primeWatch(rec: StreamRecorder<WatchAlertEventsResponse>): Promise<void> {
        const { rule } = await client.createAlertRule({
          projectId: "p-alpha", name: "probe", metric: "request_count", windowSeconds: 60, threshold: 0, operator: "gte",
          coolDownSeconds: 86_400, severity: "info",
        }, alice);
        try {
          await rec.waitFor((m) => m.event?.ruleId === rule!.id, { timeoutMs: 10_000, what: "the probe rule's event" });
        } finally {
          await client.deleteAlertRule({ id: rule!.id }, alice);
        }
      }

      let breach: Promise<{ rule: AlertRule; event: AlertEvent; waitedMs: number; receivedAt: number }> | undefined;
      /**
       * Once per suite: watches p-alpha, creates a rule its traffic breaches
       * (error_rate > 5 % over 300 s, critical) and answers the event the
       * watcher received, how long after the rule it took and when it arrived.
       */
      function breachEvent() {
        breach ??= (async () => {
          const rec = recordStream<WatchAlertEventsResponse>((signal) => client.watchAlertEvents({ projectId: "p-alpha" }, { ...alice, signal }));
          try {
            await primeWatch(rec);
            const created = performance.now();
            const { rule } = await client.createAlertRule({
              projectId: "p-alpha", name: "errors high", metric: "error_rate", windowSeconds: 300, threshold: 5, operator: "gt",
              coolDownSeconds: 3_600, severity: "critical",
            }, alice);
            const got = await rec.waitFor((m) => m.event?.ruleId === rule!.id, { timeoutMs: 5_000, what: "the breach event" });
            // receivedAt: wall-clock milliseconds, comparable with triggeredAt.
            return { rule: rule!, event: got.message.event!, waitedMs: got.at - created, receivedAt: performance.timeOrigin + got.at };
          } finally {
            await rec.close();
          }
        })();
        return breach;
      }

      it("delivers the event of a breached rule to a watcher within a second of triggering", async () => {
        const { event, receivedAt, waitedMs } = await breachEvent();
        expect(waitedMs).toBeLessThan(5_000);
        expect(receivedAt - timestampMs(event.triggeredAt!)).toBeLessThan(1_000);
      });

      it("fires with the measured error rate and the rule's fields copied", async () => {
        const { rule, event } = await breachEvent();
        const alpha = rows.filter((r) => r.projectId === "p-alpha");
        const rate = errorRate(alpha.filter(isError).length, alpha.length);
        expect(rate).toBeGreaterThan(5);
        expect(event).toMatchObject({
          ruleId: rule.id, ruleName: "errors high", projectId: "p-alpha", severity: "critical", metric: "error_rate",
          threshold: 5, operator: "gt", acknowledged: false, message: `error_rate ${Number(rate.toFixed(2))} > 5 over 300s`,
        });
        expect(event.value).toBeCloseTo(rate, 9);
      });

      it("lists the event once, newest first, under the filters that match it", async () => {
        const { event } = await breachEvent();
        const listed = await client.listAlertEvents({ projectId: "p-alpha", severity: "critical" }, alice);
        expect([listed.total, listed.events.map((e) => e.id)]).toEqual([1, [event.id]]);
        expect((await client.listAlertEvents({ projectId: "p-alpha", severity: "critical" }, bob)).total).toBe(0);
        expect((await client.listAlertEvents({ severity: "critical" }, admin)).events.map((e) => e.id)).toContain(event.id);
      });

      it("acknowledges an event once: acknowledging again answers the first acknowledgement unchanged", async () => {
        const { event } = await breachEvent();
        const first = (await client.acknowledgeAlertEvent({ id: event.id, note: "looking into it" }, alice)).event!;
        expect(first).toMatchObject({ id: event.id, acknowledged: true, acknowledgedBy: "alice", acknowledgeNote: "looking into it" });
        const again = (await client.acknowledgeAlertEvent({ id: event.id, note: "me too" }, admin)).event!;
        expect(again).toEqual(first);
        const acked = await client.listAlertEvents({ projectId: "p-alpha", severity: "critical", acknowledged: true }, alice);
        expect(acked.events).toEqual([first]);
        expect((await client.listAlertEvents({ projectId: "p-alpha", severity: "critical", acknowledged: false }, alice)).total).toBe(0);
      });

      it("answers acknowledging another tenant's or a missing event with NOT_FOUND", async () => {
        const { event } = await breachEvent();
        expect((await failure(client.acknowledgeAlertEvent({ id: event.id }, bob))).code).toBe(Code.NotFound);
        expect((await failure(client.acknowledgeAlertEvent({ id: randomUUID() }, alice))).code).toBe(Code.NotFound);
      });

      it.each(["logging", "analytics"])("fires an uptime rule from the health checks of the %s instance", async (service) => {
        const { rule } = await client.createAlertRule({
          projectId: "p-alpha", name: `${service} up`, service, metric: "uptime", windowSeconds: 60, threshold: 100, operator: "gte",
          coolDownSeconds: 86_400, severity: "warning",
        }, alice);
        onTestFinished(() => client.deleteAlertRule({ id: rule!.id }, alice).then(() => undefined));
        const event = await eventually(async () => (await client.listAlertEvents({ projectId: "p-alpha", severity: "warning", limit: 100 }, alice))
          .events.find((e) => e.ruleId === rule!.id), { timeoutMs: 10_000, what: `the ${service} uptime event` });
        expect([event.value, event.message]).toEqual([100, "uptime 100 >= 100 over 60s"]);
      });
    });
  });

  describe(`rollups under continued traffic (${store})`, () => {
    let h: AnalyticsHarness;
    beforeAll(async () => {
      h = await startAnalyticsHarness({ mongoUrl: mongoUrl(), owned: OWNED });
    });
    afterAll(() => h?.stop());

    it("adds later records into the minutes already rolled up, counting each once", async () => {
      const now = new Date();
      const first = makeTraffic(1, 600, now);
      const second = makeTraffic(2, 600, now); // the same minutes, tenants and keys: the round updates existing rollups
      const window = { from: new Date(now.getTime() - 10 * MINUTE), to: new Date(now.getTime() + MINUTE) };
      await h.ingest(first.map(recordOf));
      await waitForRollups(h.analytics.client, window, first.length);
      await h.ingest(second.map(recordOf));
      await waitForRollups(h.analytics.client, window, first.length + second.length);
      const s = await h.analytics.client.getSummary({ from: timestampFromDate(window.from), to: timestampFromDate(window.to) }, admin);
      expect(s.totalErrors).toBe([...first, ...second].filter(isError).length);
    }, 60_000);
  });

  describe(`two analytics replicas on one database (${store})`, () => {
    let h: AnalyticsHarness;
    let rows: Row[];
    let span: { from: Date; to: Date };
    const ts = (d: Date) => timestampFromDate(d);

    beforeAll(async () => {
      h = await startAnalyticsHarness({ mongoUrl: mongoUrl(), owned: OWNED, replicas: 2 });
      const now = new Date();
      rows = makeTraffic(4_242, 600, now);
      span = { from: new Date(now.getTime() - 10 * MINUTE), to: new Date(now.getTime() + MINUTE) };
      await h.ingest(rows.map(recordOf));
      await waitForRollups(h.analytics.client, span, rows.length);
    }, 90_000);
    afterAll(() => h?.stop());

    it("counts every record once, whichever replica rolls up (the lease)", async () => {
      await sleep(10 * ROLLUP_INTERVAL_MS); // rounds enough for a second replica to count anything again
      for (const replica of h.replicas) {
        const s = await replica.client.getSummary({ from: ts(span.from), to: ts(span.to) }, admin);
        expect([s.totalRequests, s.totalErrors]).toEqual([rows.length, rows.filter(isError).length]);
      }
    });

    it("fires exactly one event per breach while both replicas evaluate", async () => {
      const [a, b] = h.replicas;
      const { rule } = await b!.client.createAlertRule({
        projectId: "p-alpha", name: "busy", metric: "request_count", windowSeconds: 300, threshold: 1, operator: "gt",
        coolDownSeconds: 3_600, severity: "critical",
      }, alice);
      const first = await eventually(async () => (await a!.client.listAlertEvents({ projectId: "p-alpha" }, alice))
        .events.find((e) => e.ruleId === rule!.id), { timeoutMs: 10_000, what: "the busy event" });
      expect(first.value).toBe(rows.filter((r) => r.projectId === "p-alpha").length);
      await sleep(8 * ALERT_INTERVAL_MS); // several rounds on each replica
      for (const replica of h.replicas) {
        const listed = await replica.client.listAlertEvents({ projectId: "p-alpha", limit: 100 }, alice);
        expect(listed.events.filter((e) => e.ruleId === rule!.id).map((e) => e.id)).toEqual([first.id]);
      }
    });

    it("delivers an event to watchers on both replicas, whichever fired it", async () => {
      const recs = h.replicas.map((r) => track(recordStream<WatchAlertEventsResponse>((signal) =>
        r.client.watchAlertEvents({ projectId: "p-alpha" }, { ...alice, signal }))));
      // Prime: a probe rule fires at once; once both watchers saw it, both are live.
      const { rule: probe } = await h.analytics.client.createAlertRule({
        projectId: "p-alpha", name: "probe", metric: "request_count", windowSeconds: 60, threshold: 0, operator: "gte",
        coolDownSeconds: 86_400, severity: "warning",
      }, alice);
      for (const rec of recs) await rec.waitFor((m) => m.event?.ruleId === probe!.id, { timeoutMs: 10_000, what: "the probe event on each replica" });
      await h.analytics.client.deleteAlertRule({ id: probe!.id }, alice);
      const { rule } = await h.analytics.client.createAlertRule({
        projectId: "p-alpha", name: "watch me", metric: "request_count", windowSeconds: 300, threshold: 0, operator: "gt",
        coolDownSeconds: 3_600, severity: "info",
      }, alice);
      for (const rec of recs) await rec.waitFor((m) => m.event?.ruleId === rule!.id, { timeoutMs: 5_000, what: "the event on each replica" });
      for (const rec of recs) expect(rec.received.filter((r) => r.message.event?.ruleId === rule!.id)).toHaveLength(1);
    });
  });
}

analyticsSuite("embedded", () => undefined);
describeWithServer("TEST_MONGO_URL", "analytics service over gRPC with FerretDB", (url) => {
  analyticsSuite("FerretDB", () => url);
});

import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fieldViolationsOf } from "../../../lib/errors.js";
import type { Caller } from "../../../lib/identity.js";
import type { LogEntry } from "../../../lib/request-log.js";
import type { DocumentDb } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { makeLogEntry, nearestRank } from "../../../test/support/analytics-harness.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createRollupStore, type RollupStore } from "../storage/rollups.js";
import { createAnalyticsDomain, type AnalyticsDomain } from "./analytics-domain.js";
import { rollUp } from "./rollup.js";

// Fake clock on a whole minute; only the tests move it.
const NOW = new Date("2026-03-10T12:30:00Z");
let now = NOW;
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);
const iso = (s: string) => new Date(s);

const alice: Caller = { userId: "alice", roles: ["user"], isAdmin: false };
const bob: Caller = { userId: "bob", roles: ["user"], isAdmin: false };
const aliceKey: Caller = { userId: "alice", roles: ["user"], isAdmin: false, projectId: "p-a1", apiKeyId: "key-a" };
const admin: Caller = { userId: "root", roles: ["user", "admin"], isAdmin: true };
const owned: Record<string, string[]> = { alice: ["p-a1", "p-a2"], bob: ["p-b"] };

let db: DocumentDb;
let rollups: RollupStore;
let domain: AnalyticsDomain;

beforeEach(async () => {
  now = NOW;
  db = createEmbeddedDocumentDb();
  rollups = createRollupStore(db);
  await rollups.prepare();
  domain = createAnalyticsDomain({ rollups, directory: { projectIdsOf: async (u) => owned[u] ?? [] }, now: () => now });
});
afterEach(async () => {
  await db.close();
});

/** A record of project p-a1 five minutes ago unless overridden. */
const entry = (overrides: Partial<LogEntry> = {}) => makeLogEntry({ timestamp: ago(5), projectId: "p-a1", ...overrides });
const entries = (n: number, overrides: (i: number) => Partial<LogEntry> = () => ({})) => Array.from({ length: n }, (_, i) => entry(overrides(i)));
const seed = (list: LogEntry[]) => rollups.apply(rollUp(list));
const window = (input: Partial<{ from: Date; to: Date; projectId: string }> = {}) => ({ projectId: "", ...input });
const relativeError = (actual: number, exact: number) => Math.abs(actual - exact) / exact;
const fieldsOf = (err: unknown) => fieldViolationsOf(err).map((v) => v.field);

const ZERO_SUMMARY = {
  totalRequests: 0, totalErrors: 0, errorRate: 0, avgLatency: 0, p50Latency: 0, p95Latency: 0, p99Latency: 0,
  uniqueUsers: 0, cacheHitRatio: 0, rateLimited: 0,
};

describe("summary", () => {
  it("answers zeros for a window without requests", async () => {
    expect(await domain.summary(admin, window())).toEqual(ZERO_SUMMARY);
  });

  it("counts requests and 5xx errors, with the error rate in percent", async () => {
    await seed(entries(8, (i) => ({ statusCode: [500, 503, 404, 200, 200, 200, 200, 200][i] })));
    expect(await domain.summary(admin, window())).toMatchObject({ totalRequests: 8, totalErrors: 2, errorRate: 25 });
  });

  it("answers the mean latency and p50, p95 and p99 within 5 % of the exact nearest-rank values", async () => {
    const latencies = Array.from({ length: 200 }, (_, i) => 1 + i * i * 0.05); // skewed: 1 ms to ~1981 ms
    await seed(latencies.map((latency, i) => entry({ latency, timestamp: ago(1 + (i % 30)) })));
    const s = await domain.summary(admin, window());
    const sorted = [...latencies].sort((a, b) => a - b);
    expect(s.avgLatency).toBeCloseTo(latencies.reduce((a, b) => a + b, 0) / latencies.length, 6);
    expect(relativeError(s.p50Latency, nearestRank(sorted, 0.5))).toBeLessThan(0.05);
    expect(relativeError(s.p95Latency, nearestRank(sorted, 0.95))).toBeLessThan(0.05);
    expect(relativeError(s.p99Latency, nearestRank(sorted, 0.99))).toBeLessThan(0.05);
  });

  it("counts each user once across minutes and projects, leaving out requests without a user", async () => {
    await seed([
      entry({ userId: "u1", timestamp: ago(1) }), entry({ userId: "u1", timestamp: ago(90) }), entry({ userId: "u1", projectId: "p-b" }),
      entry({ userId: "u2" }), entry({ userId: "u3", projectId: "" }), entry({ userId: "" }),
    ]);
    expect((await domain.summary(admin, window())).uniqueUsers).toBe(3);
  });

  it("answers the cache hit ratio as hits over hits plus misses, leaving out BYPASS and uncached requests", async () => {
    await seed(["HIT", "HIT", "HIT", "MISS", "BYPASS", "BYPASS", ""].map((cacheStatus) => entry({ cacheStatus })));
    expect((await domain.summary(admin, window())).cacheHitRatio).toBe(0.75);
  });

  it("answers a cache hit ratio of 0 without cache lookups", async () => {
    await seed(["BYPASS", ""].map((cacheStatus) => entry({ cacheStatus })));
    expect((await domain.summary(admin, window())).cacheHitRatio).toBe(0);
  });

  it("counts rate-limited requests", async () => {
    await seed([entry({ rateLimited: true, statusCode: 429 }), entry(), entry({ rateLimited: true, statusCode: 429 })]);
    expect((await domain.summary(admin, window())).rateLimited).toBe(2);
  });

  it("counts only the minutes of [from, to)", async () => {
    await seed([entry({ timestamp: iso("2026-03-10T10:59:59Z") }), entry({ timestamp: iso("2026-03-10T11:00:00Z") }),
      entry({ timestamp: iso("2026-03-10T11:59:59Z") }), entry({ timestamp: iso("2026-03-10T12:00:00Z") })]);
    const s = await domain.summary(admin, window({ from: iso("2026-03-10T11:00:00Z"), to: iso("2026-03-10T12:00:00Z") }));
    expect(s.totalRequests).toBe(2);
  });

  it("defaults the window to the 24 hours before now", async () => {
    await seed([entry({ timestamp: ago(25 * 60) }), entry({ timestamp: ago(23 * 60) }), entry({ timestamp: ago(1) })]);
    expect((await domain.summary(admin, window())).totalRequests).toBe(2);
  });

  it("rejects from not before to with INVALID_ARGUMENT naming from", async () => {
    const err = await rejectionOf(domain.summary(admin, window({ from: ago(10), to: ago(20) })));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["from"]]);
  });
});

describe("requests over time", () => {
  it("fills minute buckets with zeros, oldest first, starting on UTC minutes", async () => {
    await seed([entry({ timestamp: iso("2026-03-10T12:01:10Z") }), entry({ timestamp: iso("2026-03-10T12:01:50Z") }),
      entry({ timestamp: iso("2026-03-10T12:03:00Z") })]);
    const buckets = await domain.requestsOverTime(admin, { ...window({ from: iso("2026-03-10T12:00:00Z"), to: iso("2026-03-10T12:05:00Z") }), interval: "minute" });
    expect(buckets).toEqual([
      { start: iso("2026-03-10T12:00:00Z"), count: 0 }, { start: iso("2026-03-10T12:01:00Z"), count: 2 },
      { start: iso("2026-03-10T12:02:00Z"), count: 0 }, { start: iso("2026-03-10T12:03:00Z"), count: 1 },
      { start: iso("2026-03-10T12:04:00Z"), count: 0 },
    ]);
  });

  it("sums whole minutes into hour buckets on UTC hours", async () => {
    await seed([entry({ timestamp: iso("2026-03-10T09:59:00Z") }), entry({ timestamp: iso("2026-03-10T10:00:00Z") }),
      entry({ timestamp: iso("2026-03-10T10:59:59Z") }), entry({ timestamp: iso("2026-03-10T12:10:00Z") })]);
    const buckets = await domain.requestsOverTime(admin, { ...window({ from: iso("2026-03-10T09:30:00Z"), to: iso("2026-03-10T12:30:00Z") }), interval: "hour" });
    expect(buckets.map((b) => [b.start.toISOString(), b.count])).toEqual([
      ["2026-03-10T09:00:00.000Z", 1], ["2026-03-10T10:00:00.000Z", 2], ["2026-03-10T11:00:00.000Z", 0], ["2026-03-10T12:00:00.000Z", 1],
    ]);
  });

  it("sums day buckets starting at 00:00 UTC", async () => {
    now = iso("2026-03-12T00:00:00Z");
    await seed([entry({ timestamp: iso("2026-03-09T23:59:00Z") }), entry({ timestamp: iso("2026-03-10T00:00:00Z") }),
      entry({ timestamp: iso("2026-03-11T13:00:00Z") }), entry({ timestamp: iso("2026-03-11T23:59:59Z") })]);
    const buckets = await domain.requestsOverTime(admin, { ...window({ from: iso("2026-03-09T12:00:00Z") }), interval: "day" });
    expect(buckets.map((b) => [b.start.toISOString(), b.count])).toEqual([
      ["2026-03-09T00:00:00.000Z", 1], ["2026-03-10T00:00:00.000Z", 1], ["2026-03-11T00:00:00.000Z", 2],
    ]);
  });

  it("defaults the interval to hour", async () => {
    const buckets = await domain.requestsOverTime(admin, { ...window({ from: ago(180) }), interval: "" });
    expect(buckets.map((b) => b.start.toISOString())).toEqual(["2026-03-10T09:00:00.000Z", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z", "2026-03-10T12:00:00.000Z"]);
  });

  it("rejects an unknown interval with INVALID_ARGUMENT naming interval", async () => {
    const err = await rejectionOf(domain.requestsOverTime(admin, { ...window(), interval: "week" }));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["interval"]]);
  });

  it("rejects a window of more than 1440 buckets with INVALID_ARGUMENT naming interval", async () => {
    const err = await rejectionOf(domain.requestsOverTime(admin, { ...window({ from: ago(2 * 24 * 60) }), interval: "minute" }));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["interval"]]);
  });

  it("names interval and from together when both are bad", async () => {
    const err = await rejectionOf(domain.requestsOverTime(admin, { ...window({ from: ago(1), to: ago(2) }), interval: "fortnight" }));
    expect(fieldsOf(err).sort()).toEqual(["from", "interval"]);
  });
});

describe("error rate over time", () => {
  it("answers the window's rate and each bucket's count, errors and rate, 0 for buckets without requests", async () => {
    await seed([
      ...entries(4, (i) => ({ timestamp: iso("2026-03-10T12:00:30Z"), statusCode: i === 0 ? 500 : 200 })),
      ...entries(2, () => ({ timestamp: iso("2026-03-10T12:02:30Z"), statusCode: 502 })),
    ]);
    const r = await domain.errorRateOverTime(admin, { ...window({ from: iso("2026-03-10T12:00:00Z"), to: iso("2026-03-10T12:03:00Z") }), interval: "minute" });
    expect(r.errorRate).toBeCloseTo(50, 9);
    expect(r.buckets).toEqual([
      { start: iso("2026-03-10T12:00:00Z"), count: 4, errors: 1, errorRate: 25 },
      { start: iso("2026-03-10T12:01:00Z"), count: 0, errors: 0, errorRate: 0 },
      { start: iso("2026-03-10T12:02:00Z"), count: 2, errors: 2, errorRate: 100 },
    ]);
  });

  it("answers an error rate of 0 for a window without requests", async () => {
    expect((await domain.errorRateOverTime(admin, { ...window(), interval: "hour" })).errorRate).toBe(0);
  });
});

describe("latency", () => {
  it("answers p50, p95, p99 within 5 % of exact and the mean", async () => {
    const latencies = Array.from({ length: 100 }, (_, i) => i + 1);
    await seed(latencies.map((latency) => entry({ latency })));
    const l = await domain.latency(admin, window());
    expect(l.avg).toBeCloseTo(50.5, 9);
    expect(relativeError(l.p50, 50)).toBeLessThan(0.05);
    expect(relativeError(l.p95, 95)).toBeLessThan(0.05);
    expect(relativeError(l.p99, 99)).toBeLessThan(0.05);
  });

  it("answers zeros without requests", async () => {
    expect(await domain.latency(admin, window())).toEqual({ p50: 0, p95: 0, p99: 0, avg: 0 });
  });
});

describe("top endpoints", () => {
  it("ranks endpoints by count with method, route, error rate, p95 and mean latency", async () => {
    await seed([
      ...entries(3, (i) => ({ method: "GET", route: "/a/{id}", statusCode: i === 0 ? 500 : 200, latency: 10 * (i + 1) })),
      ...entries(5, () => ({ method: "POST", route: "/b", latency: 100 })),
      ...entries(1, () => ({ method: "GET", route: "/a/{id}", projectId: "p-b", latency: 40 })),
    ]);
    const top = await domain.topEndpoints(admin, { ...window(), limit: 0 });
    expect(top.map((t) => [t.method, t.path, t.count])).toEqual([["POST", "/b", 5], ["GET", "/a/{id}", 4]]);
    expect(top[1]!.errorRate).toBe(25);
    expect(top[1]!.avgLatency).toBeCloseTo(25, 9);
    expect(relativeError(top[1]!.p95Latency, 40)).toBeLessThan(0.05);
    expect(relativeError(top[0]!.p95Latency, 100)).toBeLessThan(0.05);
  });

  it("reports requests without a matched route under (unmatched)", async () => {
    await seed([entry({ method: "GET", route: "", path: "/nope" }), entry({ method: "GET", route: "", path: "/other" })]);
    expect((await domain.topEndpoints(admin, { ...window(), limit: 0 })).map((t) => [t.method, t.path, t.count])).toEqual([["GET", "(unmatched)", 2]]);
  });

  it("answers 10 endpoints by default and at most limit", async () => {
    await seed(Array.from({ length: 12 }, (_, i) => entries(i + 1, () => ({ route: `/r${String(i).padStart(2, "0")}` }))).flat());
    const byDefault = await domain.topEndpoints(admin, { ...window(), limit: 0 });
    expect(byDefault.map((t) => t.path)).toEqual(["/r11", "/r10", "/r09", "/r08", "/r07", "/r06", "/r05", "/r04", "/r03", "/r02"]);
    expect((await domain.topEndpoints(admin, { ...window(), limit: 3 })).map((t) => t.count)).toEqual([12, 11, 10]);
  });

  it.each([-1, 101])("rejects limit %i with INVALID_ARGUMENT naming limit", async (limit) => {
    const err = await rejectionOf(domain.topEndpoints(admin, { ...window(), limit }));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["limit"]]);
  });
});

describe("top users", () => {
  it("ranks users by count with their error rate, leaving out requests without a user", async () => {
    await seed([
      ...entries(3, (i) => ({ userId: "u1", statusCode: i === 0 ? 503 : 200 })), ...entries(5, () => ({ userId: "u2" })),
      ...entries(9, () => ({ userId: "" })), entry({ userId: "u3" }),
    ]);
    const top = await domain.topUsers(admin, { ...window(), limit: 0 });
    expect(top).toEqual([
      { userId: "u2", count: 5, errorRate: 0 }, { userId: "u1", count: 3, errorRate: expect.closeTo(100 / 3, 9) }, { userId: "u3", count: 1, errorRate: 0 },
    ]);
  });

  it("answers at most limit users", async () => {
    await seed([...entries(2, () => ({ userId: "u1" })), ...entries(3, () => ({ userId: "u2" })), entry({ userId: "u3" })]);
    expect((await domain.topUsers(admin, { ...window(), limit: 2 })).map((t) => t.userId)).toEqual(["u2", "u1"]);
  });

  it("rejects limit over 100 naming limit", async () => {
    expect(fieldsOf(await rejectionOf(domain.topUsers(admin, { ...window(), limit: 101 })))).toEqual(["limit"]);
  });
});

describe("API key usage", () => {
  it("ranks keys by count with their project, errors and latest use in the window", async () => {
    await seed([
      entry({ apiKeyId: "k1", timestamp: iso("2026-03-10T12:10:05Z"), statusCode: 500 }),
      entry({ apiKeyId: "k1", timestamp: iso("2026-03-10T12:20:42Z") }),
      entry({ apiKeyId: "k1", timestamp: iso("2026-03-10T12:15:00Z") }),
      entry({ apiKeyId: "k2", projectId: "p-b", timestamp: iso("2026-03-10T12:11:00Z") }),
      entry({ apiKeyId: "" }),
    ]);
    expect(await domain.apiKeyUsage(admin, { ...window(), limit: 0 })).toEqual([
      { apiKeyId: "k1", projectId: "p-a1", count: 3, errors: 1, lastUsedAt: iso("2026-03-10T12:20:42Z") },
      { apiKeyId: "k2", projectId: "p-b", count: 1, errors: 0, lastUsedAt: iso("2026-03-10T12:11:00Z") },
    ]);
  });

  it("answers at most limit keys", async () => {
    await seed([...entries(2, () => ({ apiKeyId: "k1" })), entry({ apiKeyId: "k2" })]);
    expect((await domain.apiKeyUsage(admin, { ...window(), limit: 1 })).map((k) => k.apiKeyId)).toEqual(["k1"]);
  });

  it("rejects a negative limit naming limit", async () => {
    expect(fieldsOf(await rejectionOf(domain.apiKeyUsage(admin, { ...window(), limit: -5 })))).toEqual(["limit"]);
  });
});

describe("scoping", () => {
  // p-a1: 1, p-a2: 2, p-b: 4, alice's own project-less requests: 8, carol's: 16, anonymous: 32.
  beforeEach(async () => {
    await seed([
      ...entries(1, () => ({ projectId: "p-a1", userId: "alice", apiKeyId: "key-a" })),
      ...entries(2, () => ({ projectId: "p-a2", userId: "alice" })),
      ...entries(4, () => ({ projectId: "p-b", userId: "bob", apiKeyId: "key-b" })),
      ...entries(8, () => ({ projectId: "", userId: "alice" })),
      ...entries(16, () => ({ projectId: "", userId: "carol" })),
      ...entries(32, () => ({ projectId: "", userId: "" })),
    ]);
  });
  const total = async (caller: Caller, projectId = "") => (await domain.summary(caller, window({ projectId }))).totalRequests;

  it("shows a user their projects and their own project-less requests", async () => {
    expect(await total(alice)).toBe(1 + 2 + 8);
    expect(await total(bob)).toBe(4);
  });

  it("shows an API key only its own project", async () => {
    expect(await total(aliceKey)).toBe(1);
  });

  it("shows an admin every tenant, anonymous included", async () => {
    expect(await total(admin)).toBe(63);
  });

  it("narrows to project_id inside the caller's scope", async () => {
    expect(await total(alice, "p-a2")).toBe(2);
    expect(await total(admin, "p-b")).toBe(4);
  });

  it("answers zeros, not an error, for a project outside the caller's scope", async () => {
    expect(await domain.summary(alice, window({ projectId: "p-b" }))).toEqual(ZERO_SUMMARY);
    expect(await total(aliceKey, "p-a2")).toBe(0);
    expect(await domain.topUsers(alice, { ...window({ projectId: "p-b" }), limit: 0 })).toEqual([]);
    expect(await domain.topEndpoints(bob, { ...window({ projectId: "p-a1" }), limit: 0 })).toEqual([]);
    expect(await domain.apiKeyUsage(bob, { ...window({ projectId: "p-a1" }), limit: 0 })).toEqual([]);
    const buckets = await domain.requestsOverTime(alice, { ...window({ projectId: "p-b", from: ago(120) }), interval: "hour" });
    expect(buckets.map((b) => b.count)).toEqual([0, 0, 0]);
  });

  it("scopes every ranking like the summary", async () => {
    expect((await domain.topUsers(alice, { ...window(), limit: 0 })).map((u) => [u.userId, u.count])).toEqual([["alice", 11]]);
    expect((await domain.apiKeyUsage(alice, { ...window(), limit: 0 })).map((k) => k.apiKeyId)).toEqual(["key-a"]);
    expect((await domain.apiKeyUsage(bob, { ...window(), limit: 0 })).map((k) => k.apiKeyId)).toEqual(["key-b"]);
    expect((await domain.topEndpoints(aliceKey, { ...window(), limit: 0 })).map((t) => t.count)).toEqual([1]);
  });

  it("scopes requests over time and error rate like the summary", async () => {
    const minute = { ...window({ from: ago(10), to: ago(0) }), interval: "minute" };
    const sum = (bs: { count: number }[]) => bs.reduce((s, b) => s + b.count, 0);
    expect(sum(await domain.requestsOverTime(alice, minute))).toBe(11);
    expect(sum((await domain.errorRateOverTime(aliceKey, minute)).buckets)).toBe(1);
  });
});

import { describe, expect, it } from "vitest";
import { makeLogEntry } from "../../../test/support/analytics-harness.js";
import { bucketOf } from "./histogram.js";
import { estimate } from "./hll.js";
import { ALL_TENANTS, endpointKey, rollUp, rollupId, tenantOf, type RollupDelta } from "./rollup.js";

const T = new Date("2026-03-10T12:00:00Z");
const at = (seconds: number) => new Date(T.getTime() + seconds * 1_000);
const minute = (m: number) => new Date(T.getTime() + m * 60_000);

/** The one delta of a dimension (fails when there is not exactly one). */
function only(deltas: Map<string, RollupDelta>, dim: RollupDelta["dim"]): RollupDelta {
  const found = [...deltas.values()].filter((d) => d.dim === dim && d.tenant !== ALL_TENANTS);
  expect(found).toHaveLength(1);
  return found[0]!;
}

const histogramTotal = (d: RollupDelta) => Object.values(d.histogram).reduce((s, n) => s + n, 0);

describe("tenantOf", () => {
  it("counts a record for its project when it has one", () => {
    expect(tenantOf({ projectId: "p1", userId: "alice" })).toBe("p1");
  });

  it("counts a record without a project for its user as user:<id>", () => {
    expect(tenantOf({ projectId: "", userId: "alice" })).toBe("user:alice");
  });

  it("counts a record with neither project nor user as anonymous", () => {
    expect(tenantOf({ projectId: "", userId: "" })).toBe("anonymous");
  });
});

describe("endpointKey", () => {
  it("joins method and route template with a space", () => {
    expect(endpointKey({ method: "GET", route: "/api/v1/projects/{id}" })).toBe("GET /api/v1/projects/{id}");
  });

  it("keys records without a matched route as (unmatched), whatever their path", () => {
    expect(endpointKey({ method: "POST", route: "" })).toBe("POST (unmatched)");
  });
});

describe("rollupId", () => {
  it("names a document by dimension, tenant, key and ISO minute", () => {
    expect(rollupId("endpoint", "p1", "GET /a", T)).toBe("endpoint|p1|GET /a|2026-03-10T12:00:00.000Z");
  });
});

describe("rollUp", () => {
  it("adds a record with user and API key to five dimensions: total, service, endpoint, user and key, and to the all-tenant total", () => {
    const deltas = rollUp([makeLogEntry({ timestamp: at(5), userId: "alice", apiKeyId: "k1" })]);
    expect([...deltas.keys()].sort()).toEqual([
      rollupId("endpoint", "p1", "GET /api/v1/projects/{id}", T), rollupId("key", "p1", "k1", T),
      rollupId("service", "p1", "project", T), rollupId("total", "p1", "", T), rollupId("user", "p1", "alice", T),
      rollupId("total", ALL_TENANTS, "", T),
    ].sort());
    for (const d of deltas.values()) expect(d).toMatchObject({ tenant: d.dim === "total" && d.key === "" && d.tenant === ALL_TENANTS ? ALL_TENANTS : "p1", minute: T, count: 1 });
  });

  it("leaves out the user and key dimensions for a record without them", () => {
    const deltas = rollUp([makeLogEntry({ userId: "", apiKeyId: "" })]);
    expect([...deltas.values()].map((d) => d.dim).sort()).toEqual(["endpoint", "service", "total", "total"]);
  });

  it("adds every tenant's records into the all-tenant total, users sketch included", () => {
    const deltas = rollUp([
      makeLogEntry({ projectId: "p1", userId: "alice", statusCode: 500 }), makeLogEntry({ projectId: "p2", userId: "bob" }),
      makeLogEntry({ projectId: "", userId: "carol", cacheStatus: "HIT" }),
    ]);
    const [all, ...more] = [...deltas.values()].filter((d) => d.tenant === ALL_TENANTS);
    expect(more).toEqual([]);
    expect({ dim: all!.dim, count: all!.count, errors: all!.errors, cacheHits: all!.cacheHits, users: estimate(all!.users) })
      .toEqual({ dim: "total", count: 3, errors: 1, cacheHits: 1, users: 3 });
  });

  it("keys the service dimension (gateway) when no upstream service answered", () => {
    expect(only(rollUp([makeLogEntry({ upstreamService: "" })]), "service").key).toBe("(gateway)");
  });

  it("keeps one document per UTC minute, starting on the minute", () => {
    const deltas = rollUp([makeLogEntry({ timestamp: at(0) }), makeLogEntry({ timestamp: at(59.999) }), makeLogEntry({ timestamp: at(60) })]);
    const totals = [...deltas.values()].filter((d) => d.dim === "total" && d.tenant !== ALL_TENANTS).sort((a, b) => a.minute.getTime() - b.minute.getTime());
    expect(totals.map((d) => [d.minute, d.count])).toEqual([[minute(0), 2], [minute(1), 1]]);
  });

  it("keeps tenants apart: the same minute and key in two projects are two documents", () => {
    const deltas = rollUp([makeLogEntry({ projectId: "p1" }), makeLogEntry({ projectId: "p2" }), makeLogEntry({ projectId: "p2" })]);
    const totals = [...deltas.values()].filter((d) => d.dim === "total").map((d) => [d.tenant, d.count]).sort();
    expect(totals).toEqual([[ALL_TENANTS, 3], ["p1", 1], ["p2", 2]]);
  });

  it("counts as errors only statuses of 500 and above", () => {
    const statuses = [200, 301, 404, 429, 499, 500, 503, 599];
    const total = only(rollUp(statuses.map((statusCode) => makeLogEntry({ statusCode }))), "total");
    expect([total.count, total.errors]).toEqual([8, 3]);
  });

  it("counts cache hits and misses, not BYPASS nor uncached requests", () => {
    const cache = ["HIT", "HIT", "HIT", "MISS", "BYPASS", ""];
    const total = only(rollUp(cache.map((cacheStatus) => makeLogEntry({ cacheStatus }))), "total");
    expect([total.cacheHits, total.cacheMisses]).toEqual([3, 1]);
  });

  it("counts rate-limited requests", () => {
    const total = only(rollUp([makeLogEntry({ rateLimited: true }), makeLogEntry(), makeLogEntry({ rateLimited: true })]), "total");
    expect(total.rateLimited).toBe(2);
  });

  it("sums latencies and fills the histogram bucket of each, the histogram totalling the count in every document", () => {
    const latencies = [0.5, 3, 3, 40, 1_250];
    const deltas = rollUp(latencies.map((latency, i) => makeLogEntry({ latency, userId: `u${i % 2}`, apiKeyId: "k" })));
    const total = only(deltas, "total");
    expect(total.latencySum).toBeCloseTo(1_296.5, 9);
    expect(total.histogram).toEqual({ [bucketOf(0.5)]: 1, [bucketOf(3)]: 2, [bucketOf(40)]: 1, [bucketOf(1_250)]: 1 });
    for (const d of deltas.values()) expect(histogramTotal(d)).toBe(d.count);
  });

  it("keeps a users sketch on the total dimension only", () => {
    const users = ["alice", "bob", "alice", "carol", ""];
    const deltas = rollUp(users.map((userId) => makeLogEntry({ userId, apiKeyId: "k" })));
    expect(estimate(only(deltas, "total").users)).toBe(3);
    for (const d of deltas.values()) if (d.dim !== "total") expect(d.users).toEqual({});
  });

  it("keeps the latest request time of each document as lastAt, whatever the order", () => {
    const deltas = rollUp([makeLogEntry({ timestamp: at(30) }), makeLogEntry({ timestamp: at(50) }), makeLogEntry({ timestamp: at(10) })]);
    expect(only(deltas, "total").lastAt).toEqual(at(50));
  });

  it("adds into the map it is given, so rounds accumulate", () => {
    const into = rollUp([makeLogEntry({ statusCode: 500 })]);
    const same = rollUp([makeLogEntry(), makeLogEntry()], into);
    expect(same).toBe(into);
    expect(only(into, "total")).toMatchObject({ count: 3, errors: 1 });
  });

  it("answers an empty map for no records", () => {
    expect(rollUp([]).size).toBe(0);
  });
});

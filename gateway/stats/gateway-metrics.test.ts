import { describe, expect, it } from "vitest";
import { spanExportStats } from "../../lib/telemetry.js";
import type { Cluster } from "../clusters/cluster.js";
import { createGatewayMetrics } from "./gateway-metrics.js";
import { createRegistry } from "./registry.js";

/** The sample lines of a rendering (no HELP/TYPE). */
const samples = (text: string) => text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));

function fakeCluster(name: string, inFlight: number[], overflows: number): Cluster {
  return {
    name,
    endpoints: () => inFlight.map((n, i) => ({ address: `10.0.0.${i}:50051`, inFlight: n, requests: 0, failures: 0 })),
    overflows: () => overflows,
  } as Partial<Cluster> as Cluster;
}

describe("gateway metrics", () => {
  it("declares the standard metrics under mesh_gateway_ with their types", () => {
    const r = createRegistry();
    createGatewayMetrics(r, { openConnections: () => 0, clusters: new Map() });
    const types = [...r.render().matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(types).toEqual([
      "mesh_gateway_requests_total counter",
      "mesh_gateway_request_duration_seconds histogram",
      "mesh_gateway_rate_limited_total counter",
      "mesh_gateway_cache_total counter",
      "mesh_gateway_upstream_errors_total counter",
      "mesh_gateway_access_log_dropped_total counter",
      "mesh_gateway_trace_spans_total counter",
      "mesh_gateway_open_connections gauge",
      "mesh_gateway_upstream_in_flight gauge",
      "mesh_gateway_upstream_overflows_total counter",
    ]);
  });

  it("records a request's count and duration by route template, counting unknown methods as other", () => {
    const r = createRegistry();
    const m = createGatewayMetrics(r);
    m.request({ route: "/api/v1/projects/{id}", method: "GET", status: 200, seconds: 0.004 });
    m.request({ route: "/api/v1/projects/{id}", method: "BREW", status: 404, seconds: 0.2 });
    const lines = samples(r.render());
    expect(lines).toContain('mesh_gateway_requests_total{route="/api/v1/projects/{id}",method="GET",status="200"} 1');
    expect(lines).toContain('mesh_gateway_requests_total{route="/api/v1/projects/{id}",method="other",status="404"} 1');
    expect(lines).toContain('mesh_gateway_request_duration_seconds_bucket{route="/api/v1/projects/{id}",le="0.005"} 1');
    expect(lines).toContain('mesh_gateway_request_duration_seconds_bucket{route="/api/v1/projects/{id}",le="0.25"} 2');
    expect(lines).toContain('mesh_gateway_request_duration_seconds_count{route="/api/v1/projects/{id}"} 2');
  });

  it("counts rate limiting, cache results, upstream errors and dropped access-log records", () => {
    const r = createRegistry();
    const m = createGatewayMetrics(r);
    m.rateLimited.inc({ tier: "anonymous" });
    m.cache.inc({ result: "hit" });
    m.cache.inc({ result: "miss" });
    m.upstreamErrors.inc({ cluster: "auth", code: "unavailable" });
    m.accessLogDropped.inc(3);
    expect(samples(r.render())).toEqual(expect.arrayContaining([
      'mesh_gateway_rate_limited_total{tier="anonymous"} 1',
      'mesh_gateway_cache_total{result="hit"} 1',
      'mesh_gateway_cache_total{result="miss"} 1',
      'mesh_gateway_upstream_errors_total{cluster="auth",code="unavailable"} 1',
      "mesh_gateway_access_log_dropped_total 3",
    ]));
  });

  it("reads open connections and cluster load at every scrape", () => {
    const r = createRegistry();
    let open = 2;
    createGatewayMetrics(r, { openConnections: () => open, clusters: new Map([["auth", fakeCluster("auth", [1, 2], 4)]]) });
    expect(samples(r.render())).toEqual(expect.arrayContaining([
      "mesh_gateway_open_connections 2",
      'mesh_gateway_upstream_in_flight{cluster="auth"} 3',
      'mesh_gateway_upstream_overflows_total{cluster="auth"} 4',
    ]));
    open = 9;
    expect(samples(r.render())).toContain("mesh_gateway_open_connections 9");
  });

  it("reports the process's span export outcomes at every scrape", () => {
    const r = createRegistry();
    createGatewayMetrics(r, {});
    const s = spanExportStats();
    expect(samples(r.render())).toEqual(expect.arrayContaining([
      `mesh_gateway_trace_spans_total{outcome="exported"} ${s.exported}`,
      `mesh_gateway_trace_spans_total{outcome="failed"} ${s.failed}`,
      `mesh_gateway_trace_spans_total{outcome="dropped"} ${s.dropped}`,
    ]));
  });

  it("names a filter's counter <filter>_<event>_total and hands the same counter out twice", () => {
    const r = createRegistry();
    const m = createGatewayMetrics(r);
    const denied = m.filter<{ reason: string }>("authn", "denied", { labelNames: ["reason"] });
    denied.inc({ reason: "expired" });
    m.filter<{ reason: string }>("authn", "denied", { labelNames: ["reason"] }).inc({ reason: "expired" });
    m.filter("api-key", "cache.miss").inc();
    const lines = samples(r.render());
    expect(lines).toContain('mesh_gateway_authn_denied_total{reason="expired"} 2');
    expect(lines).toContain("mesh_gateway_api_key_cache_miss_total 1");
  });

  it("refuses a filter counter asked for again with other labels", () => {
    const m = createGatewayMetrics(createRegistry());
    m.filter<{ reason: string }>("authn", "denied", { labelNames: ["reason"] });
    expect(() => m.filter("authn", "denied")).toThrow(/declared with labels \[reason\]/);
  });
});

import { spanExportStats } from "../../lib/telemetry.js";
import type { Cluster } from "../clusters/cluster.js";
import type { Counter, Histogram, Labels, Registry } from "./registry.js";

/** How the cache filter answered a request (the `X-Cache` header's value, lower-cased). */
export type CacheResult = "hit" | "miss" | "bypass";

/** One answered request, as `GatewayMetrics.request` records it. */
export interface RequestSample {
  /** The matched route's template (`/api/v1/projects/{id}`), never the raw path; `unmatched` when no route matched. */
  readonly route: string;
  readonly method: string;
  readonly status: number;
  readonly seconds: number;
}

/** The gateway's standard metrics (every name prefixed `mesh_gateway_` by the registry). */
export interface GatewayMetrics {
  /** `requests_total{route,method,status}`. Prefer `request()`, which also records the duration. */
  readonly requests: Counter<{ route: string; method: string; status: number }>;
  /** `request_duration_seconds{route}`: time from the request's arrival to its reply. */
  readonly requestDuration: Histogram<{ route: string }>;
  /** `rate_limited_total{tier}`: requests refused with 429; tier is `api_key`, `user` or `anonymous`. */
  readonly rateLimited: Counter<{ tier: "api_key" | "user" | "anonymous" }>;
  /** `cache_total{result}`: cache lookups of cacheable routes. */
  readonly cache: Counter<{ result: CacheResult }>;
  /** `upstream_errors_total{cluster,code}`: failed upstream calls; code is the gRPC code name (`unavailable`). */
  readonly upstreamErrors: Counter<{ cluster: string; code: string }>;
  /** `access_log_dropped_total`: records the access log dropped (buffer full or shipping failed). */
  readonly accessLogDropped: Counter;
  /** Counts one answered request in `requests_total` and `request_duration_seconds`. Unknown methods count as `other`. */
  request(sample: RequestSample): void;
  /**
   * A filter's own counter, named `<filter>_<event>_total` (STYLE.md: a
   * filter's counters are `<filter>.<event>`): `filter("authn", "denied",
   * { labelNames: ["reason"] })` is `mesh_gateway_authn_denied_total{reason}`.
   * Asking twice for the same name returns the same counter.
   */
  filter<V extends Labels = Record<never, never>>(filter: string, event: string,
    opts?: { readonly help?: string; readonly labelNames?: readonly (keyof V & string)[] }): Counter<V>;
}

export interface GatewayMetricsOptions {
  /** Read at every scrape for `open_connections` (the public listener's `connections()`). */
  readonly openConnections?: () => number;
  /** Read at every scrape for `upstream_in_flight{cluster}` and `upstream_overflows_total{cluster}`; by cluster name. */
  readonly clusters?: ReadonlyMap<string, Cluster>;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Declares the gateway's standard metrics in `registry` (once per registry: names are unique). */
export function createGatewayMetrics(registry: Registry, opts: GatewayMetricsOptions = {}): GatewayMetrics {
  const requests = registry.counter<{ route: string; method: string; status: number }>({
    name: "requests_total", help: "Requests answered, by route template, method and HTTP status.", labelNames: ["route", "method", "status"],
  });
  const requestDuration = registry.histogram<{ route: string }>({
    name: "request_duration_seconds", help: "Time from a request's arrival to its reply, by route template.", labelNames: ["route"],
  });
  const filterCounters = new Map<string, { labels: string; counter: Counter<never> }>();
  const metrics: GatewayMetrics = {
    requests,
    requestDuration,
    rateLimited: registry.counter({ name: "rate_limited_total", help: "Requests refused by the rate limiter, by caller tier.", labelNames: ["tier"] }),
    cache: registry.counter({ name: "cache_total", help: "Response cache lookups, by result (hit, miss, bypass).", labelNames: ["result"] }),
    upstreamErrors: registry.counter({ name: "upstream_errors_total", help: "Failed upstream calls, by cluster and gRPC code.", labelNames: ["cluster", "code"] }),
    accessLogDropped: registry.counter({ name: "access_log_dropped_total", help: "Access log records dropped." }),
    request({ route, method, status, seconds }) {
      requests.inc({ route, method: METHODS.has(method) ? method : "other", status });
      requestDuration.observe({ route }, seconds);
    },
    filter<V extends Labels>(filter: string, event: string, o: { help?: string; labelNames?: readonly (keyof V & string)[] } = {}) {
      const name = `${filter}_${event}_total`.replace(/[^a-zA-Z0-9_]/g, "_");
      const labels = (o.labelNames ?? []).join(",");
      const known = filterCounters.get(name);
      if (known && known.labels !== labels) throw new Error(`filter counter ${name} was declared with labels [${known.labels}]`);
      if (known) return known.counter as unknown as Counter<V>;
      const counter = registry.counter<V>({ name, help: o.help ?? `${filter} filter: ${event}.`, labelNames: o.labelNames ?? [] });
      filterCounters.set(name, { labels, counter: counter as unknown as Counter<never> });
      return counter;
    },
  };
  declareCollected(registry, opts);
  return metrics;
}

/** The metrics read at scrape time from the listener and the clusters. */
function declareCollected(registry: Registry, opts: GatewayMetricsOptions): void {
  const { openConnections, clusters } = opts;
  registry.collected<{ outcome: string }>({
    name: "trace_spans_total", type: "counter", labelNames: ["outcome"],
    help: "Trace spans this process handed to its OTLP exporter, by outcome: exported, failed (refused or unreachable collector), dropped (export queue full).",
    collect: (emit) => {
      const s = spanExportStats();
      emit(s.exported, { outcome: "exported" });
      emit(s.failed, { outcome: "failed" });
      emit(s.dropped, { outcome: "dropped" });
    },
  });
  if (openConnections) {
    registry.collected({ name: "open_connections", type: "gauge", help: "Open client connections to the public listener.", collect: (emit) => emit(openConnections()) });
  }
  if (!clusters) return;
  registry.collected<{ cluster: string }>({
    name: "upstream_in_flight", type: "gauge", help: "Upstream calls in flight, by cluster.", labelNames: ["cluster"],
    collect: (emit) => { for (const c of clusters.values()) emit(c.endpoints().reduce((n, e) => n + e.inFlight, 0), { cluster: c.name }); },
  });
  registry.collected<{ cluster: string }>({
    name: "upstream_overflows_total", type: "counter", help: "Upstream calls refused by a cluster's circuit breaker, by cluster.", labelNames: ["cluster"],
    collect: (emit) => { for (const c of clusters.values()) emit(c.overflows(), { cluster: c.name }); },
  });
}

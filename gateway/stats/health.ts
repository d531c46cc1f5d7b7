import { errorEnvelope, methodNotAllowed } from "../error-envelope.js";
import { sendJson } from "../rest/handler.js";
import type { AnyRequest, AnyResponse } from "../server/listener.js";
import { createGrpcHealthProbe } from "./grpc-health-probe.js";

/** Something with endpoints to probe; a `Cluster` is one. */
export interface HealthTarget {
  readonly name: string;
  endpoints(): readonly { readonly address: string }[];
}

export interface EndpointHealth {
  readonly address: string;
  readonly status: "ok" | "down";
  /** Milliseconds until the answer (or the failure), rounded. */
  readonly latency: number;
  /** `SERVING`, `NOT_SERVING`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `NO_ENDPOINTS`, ... */
  readonly detail: string;
}

export interface ServiceHealth {
  readonly name: string;
  /** `ok` when at least one endpoint answers SERVING. */
  readonly status: "ok" | "down";
  /** The fastest serving endpoint's latency when ok; else the slowest failure's. */
  readonly latency: number;
  readonly endpoints: readonly EndpointHealth[];
}

export interface HealthReport {
  /** `ok` when every service is ok. */
  readonly status: "ok" | "degraded";
  readonly services: readonly ServiceHealth[];
}

export interface HealthChecker {
  /** Probes every target (or answers the report of a check in flight or younger than `cacheMs`); never rejects. */
  check(): Promise<HealthReport>;
  /** Closes the probe channels. */
  close(): void;
}

export interface HealthCheckerOptions {
  /** The clusters by name (RunningGateway.clusters), or a list. */
  readonly clusters: ReadonlyMap<string, HealthTarget> | readonly HealthTarget[];
  /** A probe slower than this counts as down. Default 1000 ms. */
  readonly timeoutMs?: number;
  /** A report is reused for this long. Default 1000 ms; 0 probes on every check. */
  readonly cacheMs?: number;
  /** Monotonic milliseconds. Default `performance.now`. */
  readonly now?: () => number;
}

/**
 * Health of the upstream services: `grpc.health.v1.Health/Check` (the whole
 * server, service "") on every endpoint of every cluster, all in parallel,
 * each bounded by `timeoutMs`, so a hung service reads `down` after the
 * timeout instead of hanging the caller. Concurrent checks share one round
 * of probes.
 */
export function createHealthChecker(opts: HealthCheckerOptions): HealthChecker {
  const targets = Array.isArray(opts.clusters) ? opts.clusters as readonly HealthTarget[] : [...(opts.clusters as ReadonlyMap<string, HealthTarget>).values()];
  const timeoutMs = opts.timeoutMs ?? 1_000;
  const cacheMs = opts.cacheMs ?? 1_000;
  const now = opts.now ?? (() => performance.now());
  const probe = createGrpcHealthProbe();
  let inFlight: Promise<HealthReport> | undefined;
  let last: { at: number; report: HealthReport } | undefined;

  const checkEndpoint = async (address: string): Promise<EndpointHealth> => {
    const start = now();
    const outcome = await probe.check(address, "", timeoutMs);
    return { address, status: outcome.serving ? "ok" : "down", latency: Math.round(now() - start), detail: outcome.detail };
  };
  const checkTarget = async (t: HealthTarget): Promise<ServiceHealth> => {
    const addresses = t.endpoints().map((e) => e.address);
    if (addresses.length === 0) return { name: t.name, status: "down", latency: 0, endpoints: [] };
    const endpoints = await Promise.all(addresses.map(checkEndpoint));
    const ok = endpoints.filter((e) => e.status === "ok");
    const latency = ok.length > 0 ? Math.min(...ok.map((e) => e.latency)) : Math.max(...endpoints.map((e) => e.latency));
    return { name: t.name, status: ok.length > 0 ? "ok" : "down", latency, endpoints };
  };
  const run = async (): Promise<HealthReport> => {
    const at = now();
    const services = await Promise.all(targets.map(checkTarget));
    probe.retain(new Set(services.flatMap((s) => s.endpoints.map((e) => e.address))));
    const report: HealthReport = { status: services.every((s) => s.status === "ok") ? "ok" : "degraded", services };
    last = { at, report };
    return report;
  };

  return {
    check() {
      if (last && now() - last.at < cacheMs) return Promise.resolve(last.report);
      inFlight ??= run().finally(() => { inFlight = undefined; });
      return inFlight;
    },
    close: () => probe.close(),
  };
}

export interface HealthHandlerOptions {
  /** When the gateway started, epoch milliseconds (for `uptime`). */
  readonly startedAt: number;
  /** Epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * `GET /health` (API.md): `{ status, service: "gateway", timestamp, uptime
 * (seconds), services: [{ name, status, latency (ms) }] }`, 200 when every
 * service is ok, else 503 with status `degraded`. Never cached by clients
 * or proxies. Endpoint addresses are not shown: this route is public (the
 * admin `/clusters` shows them). Other methods than GET and HEAD get 405.
 */
export function healthHandler(checker: HealthChecker, opts: HealthHandlerOptions) {
  const clock = opts.now ?? Date.now;
  return async function health(req: AnyRequest, res: AnyResponse, headers: Headers = new Headers()): Promise<void> {
    headers.set("cache-control", "no-store");
    if (req.method !== "GET" && req.method !== "HEAD") {
      headers.set("allow", "GET, HEAD");
      return sendJson(res, 405, errorEnvelope(methodNotAllowed(req.method, "/health"), headers.get("x-request-id") ?? ""), headers);
    }
    const report = await checker.check();
    const t = clock();
    sendJson(res, report.status === "ok" ? 200 : 503, {
      status: report.status,
      service: "gateway",
      timestamp: new Date(t).toISOString(),
      uptime: Math.max(0, Math.floor((t - opts.startedAt) / 1000)),
      services: report.services.map(({ name, status, latency }) => ({ name, status, latency })),
    }, headers);
  };
}

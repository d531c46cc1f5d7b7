import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../../lib/logger.js";
import type { Cluster } from "../clusters/cluster.js";
import { configToJson, type ResolvedGatewayConfig } from "../config/resolved-config.js";
import { errorEnvelope, methodNotAllowed } from "../error-envelope.js";
import { sendJson } from "../rest/handler.js";
import type { HealthChecker, ServiceHealth } from "../stats/health.js";
import { PROMETHEUS_CONTENT_TYPE, type Registry } from "../stats/registry.js";
import { redactSecrets } from "./redact.js";

export interface AdminOptions {
  /** 0 picks a free port. */
  readonly port: number;
  readonly host: string;
  readonly registry: Registry;
  /** The clusters by name (RunningGateway.clusters). */
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly config: ResolvedGatewayConfig;
  /** False while starting or draining: `/ready` answers 503. */
  readonly ready: () => boolean;
  readonly logger: Logger;
  /** Adds each cluster's and endpoint's health to `/clusters`. */
  readonly health?: HealthChecker;
}

export interface Admin {
  readonly port: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

type Route = (res: ServerResponse, headers: Headers) => Promise<void> | void;

/**
 * The admin listener (Envoy's admin port; 9901 by default), GET only:
 * `/ready` (200 `ready` or 503 `not ready`, for readiness probes), `/stats`
 * (Prometheus text), `/clusters` (JSON: endpoints with calls in flight,
 * requests, failures, the circuit breaker's overflows, and health when a
 * checker is given) and `/config_dump` (the config as proto3 JSON, secrets
 * redacted). Anything else is a JSON 404; other methods a JSON 405. Nothing
 * here is cached.
 */
export async function startAdmin(opts: AdminOptions): Promise<Admin> {
  const configDump = redactSecrets(configToJson(opts.config)); // the config is frozen: render once
  const routes: Record<string, Route> = {
    "/ready": (res, headers) => {
      const ready = opts.ready();
      sendText(res, ready ? 200 : 503, ready ? "ready\n" : "not ready\n", "text/plain; charset=utf-8", headers);
    },
    "/stats": (res, headers) => sendText(res, 200, opts.registry.render(), PROMETHEUS_CONTENT_TYPE, headers),
    "/clusters": async (res, headers) => sendJson(res, 200, { clusters: await clustersView(opts.clusters, opts.health) }, headers),
    "/config_dump": (res, headers) => sendJson(res, 200, configDump, headers),
  };
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    handle(routes, req, res).catch((err: unknown) => {
      opts.logger.error({ err, path: req.url }, "admin request failed");
      if (!res.headersSent) sendJson(res, 500, errorEnvelope(err, ""), new Headers({ "cache-control": "no-store" }));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  opts.logger.info({ port, host: opts.host }, "admin listening");
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function handle(routes: Record<string, Route>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = new Headers({ "cache-control": "no-store" });
  const path = new URL(req.url ?? "/", "http://admin").pathname;
  const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
  if (!route) return sendJson(res, 404, errorEnvelope(new ConnectError(`no admin endpoint ${path}`, Code.NotFound), ""), headers);
  if (req.method !== "GET") {
    headers.set("allow", "GET");
    return sendJson(res, 405, errorEnvelope(methodNotAllowed(req.method, path), ""), headers);
  }
  await route(res, headers);
}

function sendText(res: ServerResponse, status: number, body: string, contentType: string, headers: Headers): void {
  headers.set("content-type", contentType);
  headers.set("content-length", String(Buffer.byteLength(body)));
  res.writeHead(status, Object.fromEntries(headers));
  res.end(body);
}

/** Each cluster's counters, with the health checker's latest word on it and its endpoints. */
async function clustersView(clusters: ReadonlyMap<string, Cluster>, checker: HealthChecker | undefined) {
  const report = await checker?.check();
  const byName = new Map<string, ServiceHealth>(report?.services.map((s) => [s.name, s]));
  return [...clusters.values()].map((c) => {
    const health = byName.get(c.name);
    const endpointHealth = new Map(health?.endpoints.map((e) => [e.address, e]));
    return {
      name: c.name,
      ...(health ? { health: health.status, latency: health.latency } : {}),
      ...c.stats(),
      // Each endpoint as the cluster routes to it (active health, outlier ejection) and as /health's probe saw it.
      endpoints: c.endpoints().map((e) => {
        const h = endpointHealth.get(e.address);
        return { ...e, ...(h ? { probe: { status: h.status, latency: h.latency, detail: h.detail } } : {}) };
      }),
    };
  });
}

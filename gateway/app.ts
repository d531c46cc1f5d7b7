import { durationMs } from "@bufbuild/protobuf/wkt";
import { context } from "@opentelemetry/api";
import { Code, ConnectError } from "@connectrpc/connect";
import type { JSONWebKeySet } from "jose";
import type { Logger } from "pino";
import { AnalyticsService } from "../gen/mesh/analytics/v1/analytics_pb.js";
import { AuthService } from "../gen/mesh/auth/v1/auth_pb.js";
import { LbPolicy } from "../gen/mesh/gateway/v1/config_pb.js";
import { LoggingService } from "../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../gen/mesh/project/v1/project_pb.js";
import { createCluster, type Cluster } from "./clusters/cluster.js";
import { findFilter, type ResolvedGatewayConfig } from "./config/resolved-config.js";
import { createAdmission } from "./filters/admission.js";
import { createApiKeyVerifier, type ApiKeyVerifier } from "./filters/api-key.js";
import { createAuthenticator, jwksFromCluster } from "./filters/authn.js";
import { createCors } from "./filters/cors.js";
import { createResponseCache } from "./filters/cache.js";
import { createRateLimiter } from "./filters/rate-limit.js";
import { watchRevokedTokens, type RevokedTokens } from "./filters/revocations.js";
import { watchRouteConfigs, type RouteConfigs } from "./filters/route-configs.js";
import { HeaderMap } from "../lib/header-map.js";
import { requestIdOf } from "./filters/request-id.js";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { accessLogLine } from "./access-log/line.js";
import { createAccessLogShipper, type AccessLogShipper } from "./access-log/shipper.js";
import { startAdmin } from "./admin/admin.js";
import type { NativeExchange } from "./native/proxy.js";
import { createLocalServices } from "./native/local-services.js";
import { createApiDocsHandler } from "./openapi/swagger-ui.js";
import { createGatewayMetrics } from "./stats/gateway-metrics.js";
import { createHealthChecker, healthHandler } from "./stats/health.js";
import { createRegistry } from "./stats/registry.js";
import { openGatewayState } from "./state/open.js";
import type { GatewayState } from "./state/port.js";
import { createRestHandler, headersOf, sendError, type ExchangeInfo } from "./rest/handler.js";
import { createListener, remoteAddressOf, type AnyRequest, type AnyResponse } from "./server/listener.js";
import { endRequestTrace, startRequestTrace, TRACE_ID_HEADER } from "./tracing.js";
import { startGatewaySchema } from "./schema/gateway-schema.js";
import { createSchemaNativeHandler } from "./schema/native-handler.js";

/** The services compiled into the gateway (gen/); clusters with `reflection` add others at run time (schema/). */
export const GATEWAY_SERVICES = [AuthService, ProjectService, LoggingService, AnalyticsService];

export interface GatewayOverrides {
  /** JWKS source replacing the configured one (tests). */
  readonly jwks?: () => Promise<JSONWebKeySet>;
  /** Gateway state replacing the configured one (tests). */
  readonly state?: GatewayState;
}

export interface RunningGateway {
  readonly port: number;
  readonly adminPort: number;
  readonly clusters: ReadonlyMap<string, Cluster>;
  stop(): Promise<void>;
}

/**
 * Starts the gateway on the configured listener: the REST routes of every
 * known service (from their google.api.http rules), upstream clusters, the
 * gateway state (Redis or embedded), and the filters: request id,
 * authentication (JWT, API key), method access, rate limit, response cache.
 */
export async function startGateway(cfg: ResolvedGatewayConfig, logger: Logger, overrides: GatewayOverrides = {}): Promise<RunningGateway> {
  const startedAt = Date.now();
  let ready = false;
  const stopping = new AbortController();
  const clusters = new Map<string, Cluster>();
  const timeouts = new Map<string, number>();
  const byName = new Map<string, Cluster>();
  const routerCfg = findFilter(cfg, "router");
  for (const c of cfg.clusters) {
    const cluster = createCluster({
      name: c.name,
      endpoints: c.endpoints,
      ...(c.dnsName ? { dns: { name: c.dnsName, port: c.dnsPort, refreshMs: durationMs(c.dnsRefreshInterval) } } : {}),
      lbPolicy: c.lbPolicy === LbPolicy.LEAST_REQUEST ? "least_request" : "round_robin",
      maxConcurrent: c.circuitBreakers.maxConcurrentRequests,
      maxPending: c.circuitBreakers.maxPendingRequests,
      healthCheck: {
        intervalMs: durationMs(c.healthCheck.interval), timeoutMs: durationMs(c.healthCheck.timeout),
        unhealthyThreshold: c.healthCheck.unhealthyThreshold, healthyThreshold: c.healthCheck.healthyThreshold,
      },
      outlierDetection: {
        consecutiveFailures: c.outlierDetection.consecutiveFailures,
        baseEjectionMs: durationMs(c.outlierDetection.baseEjectionTime), maxEjectionPercent: c.outlierDetection.maxEjectionPercent,
      },
      ...(routerCfg ? { retry: {
        attempts: routerCfg.retryPolicy.maxAttempts, backoffBaseMs: durationMs(routerCfg.retryPolicy.backoffBase),
        backoffMaxMs: durationMs(routerCfg.retryPolicy.backoffMax), budgetPercent: routerCfg.retryPolicy.budgetPercent,
      } } : {}),
      defaultTimeoutMs: durationMs(c.requestTimeout),
      onResolveError: (err) => logger.warn({ err, cluster: c.name }, "DNS resolution failed; keeping the last endpoints"),
    });
    if (c.dnsName) await cluster.refresh();
    byName.set(c.name, cluster);
    for (const s of c.services) {
      clusters.set(s, cluster);
      timeouts.set(s, durationMs(c.requestTimeout));
    }
  }
  // Built-in routes, plus those of reflection clusters (loaded now, refreshed on their interval).
  const schema = await startGatewaySchema({
    cfg, clusters: byName, builtin: GATEWAY_SERVICES, logger,
    openApiInfo: { title: "mesh", version: "1.0.0", description: "The mesh's REST API, transcoded to gRPC by the gateway." },
  });
  const state = overrides.state ?? await openGatewayState({ url: cfg.redis.url || undefined, logger });
  const authnCfg = findFilter(cfg, "authn");
  let authenticator;
  let revoked: RevokedTokens | undefined;
  if (authnCfg) {
    const jwks = overrides.jwks ?? (authnCfg.jwksSource.case === "jwksCluster"
      ? jwksFromCluster(byName.get(authnCfg.jwksSource.value)!)
      : async () => (await (await fetch(authnCfg.jwksSource.value as string, { signal: AbortSignal.timeout(5_000) })).json()) as JSONWebKeySet);
    const authCluster = clusters.get(AuthService.typeName);
    revoked = authCluster ? watchRevokedTokens(authCluster.transport, logger) : undefined;
    authenticator = createAuthenticator(authnCfg, { jwks, ...(revoked ? { revoked } : {}) });
  }
  const apiKeyCfg = findFilter(cfg, "apiKey");
  let apiKeys: ApiKeyVerifier | undefined;
  const projectCluster = clusters.get(ProjectService.typeName);
  if (apiKeyCfg && projectCluster) {
    apiKeys = createApiKeyVerifier({
      transport: projectCluster.transport, state, logger,
      positiveTtlMs: durationMs(apiKeyCfg.positiveCacheTtl), negativeTtlMs: durationMs(apiKeyCfg.negativeCacheTtl),
    });
    apiKeys.watch();
  }
  const routeConfigs: RouteConfigs | undefined = projectCluster ? watchRouteConfigs(projectCluster.transport, logger) : undefined;
  const rateCfg = findFilter(cfg, "rateLimit");
  const cacheCfg = findFilter(cfg, "cache");
  const admission = createAdmission({
    authenticator, apiKeys, routeConfigs, apiKeyHeader: apiKeyCfg?.headerName ?? "x-api-key",
    rateLimiter: rateCfg ? createRateLimiter(rateCfg, state, logger) : undefined,
  });
  const rest = createRestHandler({
    router: schema.router,
    noRoute: schema.noRoute,
    clusters,
    maxBodyBytes: cfg.listener.maxRequestBodyBytes,
    maxJsonDepth: cfg.listener.maxJsonDepth,
    timeoutMs: (service) => timeouts.get(service) ?? (routerCfg ? durationMs(routerCfg.defaultTimeout) : 15_000),
    logger,
    admit: admission,
    apiKeyHeader: apiKeyCfg?.headerName ?? "x-api-key",
    shutdown: stopping.signal,
    cache: cacheCfg ? createResponseCache({ state, logger, maxEntryBytes: cacheCfg.maxEntryBytes, defaultTtlMs: durationMs(cacheCfg.defaultTtl) }) : undefined,
  });
  const requestIdHeader = findFilter(cfg, "requestId")?.headerName ?? "x-request-id";
  // gRPC, gRPC-Web and Connect to /<package.Service>/<Method>: the same admission, metadata instead of REST headers.
  const native = createSchemaNativeHandler<NativeExchange & { info: ExchangeInfo }>(schema, {
    clusterFor: (service) => clusters.get(service.typeName),
    admit: async (call) => {
      const upstreamHeaders = new HeaderMap();
      const caller = await admission({
        method: call.method, headers: call.requestHeader, remoteAddress: call.remoteAddress, upstreamHeaders, responseHeaders: call.responseHeader,
      });
      if (call.exchange) call.exchange.info.caller = caller;
      return upstreamHeaders;
    },
    requestIdHeader, maxMessageBytes: cfg.listener.maxRequestBodyBytes, logger,
  });
  // grpc.reflection.v1/v1alpha and grpc.health.v1, answered by the gateway itself: public, never admitted or forwarded.
  const local = createLocalServices({
    services: () => schema.services(), serving: () => ready, stopping: stopping.signal, requestIdHeader, maxMessageBytes: cfg.listener.maxRequestBodyBytes, logger,
  });

  const accessCfg = findFilter(cfg, "accessLog");
  const loggingCluster = clusters.get(LoggingService.typeName);
  let shipper: AccessLogShipper | undefined;
  if (accessCfg && loggingCluster) {
    shipper = createAccessLogShipper({
      transport: loggingCluster.transport, logger, maxBuffered: accessCfg.maxBufferedRecords,
      batchSize: accessCfg.batchSize, flushIntervalMs: durationMs(accessCfg.flushInterval),
    });
  }
  const apiDocs = createApiDocsHandler({
    specUrl: "/openapi.json",
    document: schema.openApi,
  });
  const registry = createRegistry();
  let connections = () => 0;
  const metrics = createGatewayMetrics(registry, { openConnections: () => connections(), clusters: byName });
  const health = createHealthChecker({ clusters: byName, timeoutMs: Math.max(...cfg.clusters.map((c) => durationMs(c.healthCheck.timeout))) });
  const healthRoute = healthHandler(health, { startedAt });
  const corsCfg = findFilter(cfg, "cors");
  const cors = corsCfg ? createCors(corsCfg) : undefined;
  const handler = (req: AnyRequest, res: AnyResponse) => {
    const requestId = requestIdOf(req.headers[requestIdHeader]);
    const responseHeaders = new HeaderMap({ [requestIdHeader]: requestId });
    const c = cors?.(req.method ?? "GET", headersOf(req));
    c?.headers.forEach((v, k) => responseHeaders.set(k, v));
    if (c?.kind === "preflight") {
      (res as { writeHead(s: number, h: Record<string, string>): void }).writeHead(c.status, Object.fromEntries(responseHeaders));
      return void res.end();
    }
    const started = performance.now();
    const startedAt = Date.now();
    const info: ExchangeInfo = {};
    const rt = startRequestTrace(req, requestId);
    if (rt.traceId) responseHeaders.set(TRACE_ID_HEADER, rt.traceId);
    // "close" follows every reply, one cut short (the client went away) included.
    res.once("close", () => {
      if (!res.writableFinished) return endRequestTrace(rt, { method: req.method ?? "", route: info.route ?? "", status: 499, errorCode: "CANCELLED" });
      endRequestTrace(rt, { method: req.method ?? "", route: info.route ?? "", status: res.statusCode, errorCode: info.errorCode });
      const latency = performance.now() - started;
      metrics.request({ route: info.route || "unmatched", method: req.method ?? "", status: res.statusCode, seconds: latency / 1000 });
      if (res.statusCode === 429) metrics.rateLimited.inc({ tier: info.caller?.subject.tier ?? "anonymous" });
      const cacheResult = responseHeaders.get("x-cache")?.toLowerCase();
      if (cacheResult === "hit" || cacheResult === "miss" || cacheResult === "bypass") metrics.cache.inc({ result: cacheResult });
      if (info.upstream && res.statusCode >= 500) metrics.upstreamErrors.inc({ cluster: info.upstream, code: (info.errorCode ?? "internal").toLowerCase() });
      const logged = logger.isLevelEnabled("info");
      if (!logged && !shipper) return;
      const entry = {
        requestId, traceId: rt.traceId ?? "", spanId: rt.spanId ?? "", timestamp: timestampFromMs(startedAt), method: req.method ?? "", path: (req.url ?? "").split("?")[0]!,
        route: info.route ?? "", statusCode: res.statusCode, latency, ip: remoteAddressOf(req),
        userAgent: String(req.headers["user-agent"] ?? "").slice(0, 512), userId: info.caller?.userId ?? "",
        projectId: info.caller?.projectId ?? "", apiKeyId: info.caller?.apiKeyId ?? "",
        cacheStatus: responseHeaders.get("x-cache") ?? "", rateLimited: res.statusCode === 429, upstreamService: info.upstream ?? "",
        bytesIn: Number(req.headers["content-length"] ?? 0) || 0, bytesOut: Number(responseHeaders.get("content-length") ?? 0) || 0,
        errorCode: info.errorCode ?? "",
      };
      if (logged) context.with(rt.context, () => logger.info(accessLogLine(entry), "request"));
      shipper?.record(entry);
    });
    context.with(rt.context, () => dispatch(req, res, requestId, responseHeaders, info));
  };
  const dispatch = (req: AnyRequest, res: AnyResponse, requestId: string, responseHeaders: Headers, info: ExchangeInfo) => {
    if (native.handle(req, res, { requestId, responseHeaders, info }) || local.handle(req, res, { requestId, responseHeaders })) {
      info.route = (req.url ?? "").split("?")[0];
      info.upstream = clusters.get(info.route!.split("/")[1] ?? "")?.name;
      return;
    }
    if (apiDocs(req, res)) {
      info.route = (req.url ?? "").startsWith("/openapi.json") ? "/openapi.json" : "/api-docs";
      return;
    }
    if ((req.url ?? "").split("?")[0] === "/health") {
      info.route = "/health";
      healthRoute(req, res, responseHeaders).catch((err: unknown) => sendError(res, err, requestId, responseHeaders));
      return;
    }
    rest(req, res, requestId, responseHeaders, info).catch((err: unknown) => {
      logger.error({ err, request_id: requestId }, "request failed unexpectedly");
      sendError(res, err, requestId, responseHeaders);
    });
  };
  const listener = createListener(handler, {
    headersTimeoutMs: durationMs(cfg.listener.requestHeaderTimeout),
    idleTimeoutMs: durationMs(cfg.listener.idleTimeout),
    onClientError: (err) => logger.debug({ err }, "refused a malformed request"),
  });
  connections = () => listener.connections();
  const port = await listener.listen(cfg.listener.port, cfg.listener.address);
  const admin = await startAdmin({
    port: cfg.listener.adminPort, host: cfg.listener.address, registry, clusters: byName, config: cfg, ready: () => ready, logger, health,
  });
  ready = true;
  logger.info({ port, admin_port: admin.port, clusters: [...byName.keys()] }, "gateway listening");
  return {
    port,
    adminPort: admin.port,
    clusters: byName,
    async stop() {
      ready = false;
      stopping.abort(new ConnectError("the gateway is shutting down; reconnect", Code.Unavailable));
      await listener.close(durationMs(cfg.listener.drainTimeout));
      await admin.close();
      health.close();
      await shipper?.flush(2_000);
      await shipper?.close();
      apiKeys?.close();
      revoked?.close();
      routeConfigs?.close();
      schema.close();
      for (const c of byName.values()) c.close();
      if (!overrides.state) await state.close();
    },
  };
}

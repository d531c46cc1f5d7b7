import { clone, create, isFieldSet, isMessage, type DescMessage, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, DurationSchema, hasCustomJsonRepresentation } from "@bufbuild/protobuf/wkt";
import { Access } from "../../gen/mesh/gateway/v1/policy_pb.js";
import {
  AccessLogFilterSchema,
  ApiKeyFilterSchema,
  AuthnFilterSchema,
  CacheFilterSchema,
  BuiltinSchemaSchema,
  CircuitBreakersSchema,
  ClusterSchema,
  CorsFilterSchema,
  GatewayConfigSchema,
  HealthCheckSchema,
  JwtAlgorithm,
  LbPolicy,
  ListenerSchema,
  OutlierDetectionSchema,
  RateLimitAlgorithm,
  RateLimitFailureMode,
  RateLimitFilterSchema,
  RateLimitTierSchema,
  ReflectionSchemaSchema,
  RequestIdFilterSchema,
  RetryPolicySchema,
  RouterFilterSchema,
  type GatewayConfig,
  type RouterFilter,
} from "../../gen/mesh/gateway/v1/config_pb.js";
import type { ResolvedGatewayConfig } from "./resolved-config.js";

const ms = (n: number) => durationFromMs(n);
const s = (n: number) => durationFromMs(n * 1000);

function entry<S extends DescMessage>(schema: S, init: MessageInitShape<S>): [string, Message] {
  return [schema.typeName, create(schema, init)];
}

/**
 * Field defaults per message type (the values documented in config.proto and
 * gateway/README.md). A field set in the file or by the environment keeps its
 * value; a message-typed default (a rate-limit tier) fills the fields its
 * parent left out.
 */
const TYPE_DEFAULTS = new Map<string, Message>([
  entry(ListenerSchema, {
    address: "0.0.0.0",
    port: 8080,
    adminPort: 9901,
    maxRequestBodyBytes: 1024 * 1024,
    maxJsonDepth: 64,
    requestHeaderTimeout: s(10),
    idleTimeout: s(60),
    drainTimeout: s(10),
  }),
  entry(ClusterSchema, {
    dnsRefreshInterval: s(10), lbPolicy: LbPolicy.ROUND_ROBIN, connectTimeout: s(5),
    schema: { case: "builtin", value: create(BuiltinSchemaSchema) },
  }),
  // A method without the mesh's policy option needs a signed-in user: reachable, never anonymously (README).
  entry(ReflectionSchemaSchema, { refreshInterval: s(30), defaultAccess: Access.USER }),
  entry(CircuitBreakersSchema, { maxConcurrentRequests: 1024, maxPendingRequests: 1024 }),
  entry(HealthCheckSchema, { interval: s(10), timeout: s(1), unhealthyThreshold: 3, healthyThreshold: 2 }),
  entry(OutlierDetectionSchema, { consecutiveFailures: 5, baseEjectionTime: s(30), maxEjectionPercent: 10 }),
  entry(RequestIdFilterSchema, { headerName: "x-request-id" }),
  entry(CorsFilterSchema, {
    allowedMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    allowedHeaders: [
      "authorization", "content-type", "x-api-key", "x-request-id",
      "connect-protocol-version", "connect-timeout-ms", "grpc-timeout", "x-grpc-web", "x-user-agent",
    ],
    // The gRPC status headers let gRPC-Web and Connect clients read errors
    // from trailers-only replies.
    exposedHeaders: [
      "X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Cache", "Retry-After",
      "Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
    ],
    maxAge: s(7200), // Chromium's cap
  }),
  entry(AccessLogFilterSchema, { maxBufferedRecords: 100_000, flushInterval: s(1), batchSize: 500 }),
  entry(AuthnFilterSchema, {
    jwksSource: { case: "jwksCluster", value: "auth" },
    issuer: "mesh-auth", // the auth service's JWT_ISSUER default
    audiences: ["mesh"], // its JWT_AUDIENCE default
    clockLeeway: s(30),
    allowedAlgorithms: [JwtAlgorithm.EDDSA],
    verifiedTokenCacheSize: 10_000,
    jwksMinRefetchInterval: s(30),
  }),
  entry(ApiKeyFilterSchema, { headerName: "x-api-key", positiveCacheTtl: s(60), negativeCacheTtl: s(10) }),
  entry(RateLimitTierSchema, { period: s(60) }),
  entry(RateLimitFilterSchema, {
    algorithm: RateLimitAlgorithm.GCRA,
    apiKey: { limit: 1000 },
    user: { limit: 100 },
    anonymous: { limit: 20 },
    failureMode: RateLimitFailureMode.FAIL_OPEN,
    redisCommandTimeout: ms(100),
  }),
  entry(CacheFilterSchema, { maxEntryBytes: 256 * 1024, defaultTtl: s(0) }),
  entry(RetryPolicySchema, { maxAttempts: 3, backoffBase: ms(25), backoffMax: ms(250), budgetPercent: 20 }),
  entry(RouterFilterSchema, { defaultTimeout: s(15) }),
]);

/**
 * Fills every unset field of `cfg` with its default, in place, and creates
 * every absent sub-message, so that the result has the shape of
 * ResolvedGatewayConfig. Derived defaults: a tier's `burst` is its `limit`; a
 * cluster's `requestTimeout` is the router's `defaultTimeout`. Filter entries
 * naming no filter stay so; validation reports them.
 */
export function applyDefaults(cfg: GatewayConfig): ResolvedGatewayConfig {
  fill(GatewayConfigSchema, cfg, undefined);
  const fallback = TYPE_DEFAULTS.get(RouterFilterSchema.typeName) as RouterFilter;
  let router = fallback;
  for (const f of cfg.filters) {
    if (f.config.case === "router") router = f.config.value;
    if (f.config.case !== "rateLimit") continue;
    for (const tier of [f.config.value.apiKey, f.config.value.user, f.config.value.anonymous]) {
      if (tier !== undefined) tier.burst ??= tier.limit;
    }
  }
  const timeout = router.defaultTimeout ?? fallback.defaultTimeout;
  for (const c of cfg.clusters) {
    if (c.requestTimeout === undefined && timeout !== undefined) c.requestTimeout = clone(DurationSchema, timeout);
  }
  return cfg as unknown as ResolvedGatewayConfig;
}

type Fields = Record<string, unknown>;
type OneofValue = { case: string | undefined; value?: unknown };

/** Fills `msg` from `nested` (its parent's default for it), then from its type's defaults. */
function fill(desc: DescMessage, msg: Message, nested: Message | undefined): void {
  const sources = [nested, TYPE_DEFAULTS.get(desc.typeName)].filter((d) => d !== undefined);
  const target = msg as unknown as Fields;
  for (const oneof of desc.oneofs) {
    const src = sources.map((d) => (d as unknown as Fields)[oneof.localName] as OneofValue).find((o) => o.case !== undefined);
    if ((target[oneof.localName] as OneofValue).case === undefined && src !== undefined) {
      // A message default (the cluster's `builtin` schema) is copied: defaults are shared.
      const member = oneof.fields.find((f) => f.localName === src.case);
      target[oneof.localName] = { case: src.case, value: member?.message ? clone(member.message, src.value as Message) : src.value };
    }
  }
  for (const field of desc.fields) {
    if (field.oneof !== undefined) {
      const sel = target[field.oneof.localName] as OneofValue;
      if (sel.case === field.localName && field.message !== undefined) fill(field.message, sel.value as Message, undefined);
      continue;
    }
    const src = sources.find((d) => isFieldSet(d, field)) as unknown as Fields | undefined;
    const isSub = field.fieldKind === "message" && !hasCustomJsonRepresentation(field.message);
    if (!isSub && !isFieldSet(msg, field) && src !== undefined) target[field.localName] = copy(src[field.localName]);
    if (isSub) {
      const sub = (target[field.localName] ??= create(field.message)) as Message;
      fill(field.message, sub, src?.[field.localName] as Message | undefined);
    }
    if (field.fieldKind === "list" && field.listKind === "message") {
      for (const el of target[field.localName] as Message[]) fill(field.message, el, undefined);
    }
  }
}

/** Defaults are shared: hand out copies of lists and durations. */
function copy(v: unknown): unknown {
  if (Array.isArray(v)) return [...(v as unknown[])];
  if (isMessage(v, DurationSchema)) return clone(DurationSchema, v);
  return v;
}

import { describe, expect, it } from "vitest";
import type { Violation } from "./gateway-config-error.js";
import { loadGatewayConfig } from "./load.js";
import { configToJson } from "./resolved-config.js";
import { baseTree, filterIn, violationsOf, type ConfigTree } from "./testing.js";

type Case = [rule: string, edit: (t: ConfigTree) => void, expected: Violation[]];

const cluster = (t: ConfigTree, i: number) => t.clusters[i]!;

const cases: Case[] = [
  ["duplicate cluster names", (t) => (cluster(t, 1).name = "auth"), [{ path: "clusters[1].name", message: 'duplicate cluster name "auth" (also clusters[0])' }]],
  ["a cluster name that is not a DNS label", (t) => (cluster(t, 3).name = "Analytics_1"), [
    { path: "clusters[3].name", message: "\"Analytics_1\" must be a DNS label: a-z, 0-9 and '-', starting with a letter" },
  ]],
  ["a service served by two clusters", (t) => (cluster(t, 1).services = ["mesh.project.v1.ProjectService", "mesh.auth.v1.AuthService"]), [
    { path: "clusters[1].services[1]", message: 'mesh.auth.v1.AuthService is already served by cluster "auth" (clusters[0])' },
  ]],
  ["a malformed service name", (t) => (cluster(t, 3).services = ["mesh.analytics.v1.AnalyticsService", "analytics"]), [
    { path: "clusters[3].services[1]", message: '"analytics" is not a fully-qualified service name such as mesh.auth.v1.AuthService' },
  ]],
  ["a cluster serving nothing", (t) => (cluster(t, 3).services = []), [{ path: "clusters[3].services", message: "at least one service is required" }]],
  ["a service the gateway was not built with, without reflection", (t) => t.clusters.push({ name: "greeter", services: ["demo.greeter.v1.Greeter"], endpoints: ["127.0.0.1:50060"] }), [
    { path: "clusters[4].services[0]", message: "unknown service demo.greeter.v1.Greeter; known: mesh.auth.v1.AuthService, mesh.project.v1.ProjectService, "
      + "mesh.logging.v1.LoggingService, mesh.analytics.v1.AnalyticsService (a service the gateway was not built with needs reflection)" },
  ]],
  ["a built-in service from a reflection cluster", (t) => (cluster(t, 3).reflection = {}), [
    { path: "clusters[3].services[0]", message: "mesh.analytics.v1.AnalyticsService is built into the gateway; serve it from a cluster without reflection" },
  ]],
  ["a reflection refresh interval of 0", (t) => t.clusters.push({ name: "greeter", services: ["demo.greeter.v1.Greeter"], endpoints: ["127.0.0.1:50060"], reflection: { refreshInterval: "0s" } }), [
    { path: "clusters[4].reflection.refreshInterval", message: "must be longer than 0s, got 0s" },
  ]],
  ["both schema sources", (t) => Object.assign(cluster(t, 3), { builtin: {}, reflection: {} }), [
    { path: "clusters[3].reflection", message: "conflicts with builtin: set only one of builtin, reflection" },
  ]],
  ["a cluster with both endpoints and dnsName", (t) => Object.assign(cluster(t, 1), { dnsName: "project.local", dnsPort: 50052 }), [
    { path: "clusters[1]", message: "sets both endpoints and dnsName; set exactly one" },
  ]],
  ["a cluster with neither endpoints nor dnsName", (t) => delete cluster(t, 1).endpoints, [
    { path: "clusters[1]", message: "sets neither endpoints nor dnsName; set exactly one" },
  ]],
  ["bad host:port endpoints", (t) => (cluster(t, 1).endpoints = ["127.0.0.1", "bad_host:80", "127.0.0.1:0", "[::1]:50052", "[::1]:50052"]), [
    { path: "clusters[1].endpoints[0]", message: '"127.0.0.1" is not host:port (IPv6 as [::1]:port)' },
    { path: "clusters[1].endpoints[1]", message: '"bad_host" is not a host name or IP address' },
    { path: "clusters[1].endpoints[2]", message: "port 0 is not 1-65535" },
    { path: "clusters[1].endpoints[4]", message: "duplicate endpoint [::1]:50052" },
  ]],
  ["a DNS cluster without a port, and a port without DNS", (t) => {
    Object.assign(cluster(t, 1), { endpoints: [], dnsName: "project.mesh.svc.cluster.local" });
    cluster(t, 2).dnsPort = 50053;
  }, [
    { path: "clusters[1].dnsPort", message: "must be 1-65535 with dnsName, got 0" },
    { path: "clusters[2].dnsPort", message: "is only used with dnsName" },
  ]],
  ["non-positive cluster limits", (t) => Object.assign(cluster(t, 0), {
    circuitBreakers: { maxConcurrentRequests: 0 },
    healthCheck: { unhealthyThreshold: 0, timeout: "10s" },
    outlierDetection: { consecutiveFailures: 0, maxEjectionPercent: 101 },
  }), [
    { path: "clusters[0].circuitBreakers.maxConcurrentRequests", message: "must be at least 1, got 0" },
    { path: "clusters[0].healthCheck.timeout", message: "must be shorter than healthCheck.interval" },
    { path: "clusters[0].healthCheck.unhealthyThreshold", message: "must be at least 1, got 0" },
    { path: "clusters[0].outlierDetection.consecutiveFailures", message: "must be at least 1, got 0" },
    { path: "clusters[0].outlierDetection.maxEjectionPercent", message: "must be at most 100, got 101" },
  ]],
  ["listener limits and clashing ports", (t) => (t.listener = { port: 9000, adminPort: 9000, maxRequestBodyBytes: 0, address: "not an address!" }), [
    { path: "listener.address", message: '"not an address!" is not an IP address or host name' },
    { path: "listener.adminPort", message: "must differ from listener.port (9000)" },
    { path: "listener.maxRequestBodyBytes", message: "must be at least 1, got 0" },
  ]],
  ["a malformed Redis URL", (t) => (t.redis = { url: "http://redis:6379" }), [{ path: "redis.url", message: "must be a redis:// or rediss:// URL" }]],
  ["a filter listed twice", (t) => t.filters.splice(2, 0, { cors: {} }), [{ path: "filters[2]", message: "duplicate filter cors (also filters[1])" }]],
  ["a router that is not last", (t) => t.filters.push(t.filters.splice(6, 1)[0]!), [
    { path: "filters[6]", message: "router must be the last filter" },
    { path: "filters[7]", message: "cache must come before router: the gateway runs its filters in the order requestId, cors, accessLog, authn, apiKey, rateLimit, cache, router (any may be left out)" },
  ]],
  ["filters out of the gateway's order", (t) => t.filters.splice(0, 2, t.filters[1]!, t.filters[0]!), [
    { path: "filters[1]", message: "requestId must come before cors: the gateway runs its filters in the order requestId, cors, accessLog, authn, apiKey, rateLimit, cache, router (any may be left out)" },
  ]],
  ["a chain without router", (t) => t.filters.pop(), [{ path: "filters", message: "the chain must end with router" }]],
  ["a filter entry naming no filter", (t) => t.filters.unshift({}), [
    { path: "filters[0]", message: "names no filter; set one of requestId, cors, accessLog, authn, apiKey, rateLimit, cache, router" },
  ]],
  ["an authn JWKS source naming a missing cluster", (t) => (filterIn(t, "authn").jwksCluster = "identity"), [
    { path: "filters[3].authn.jwksCluster", message: 'no cluster named "identity"' },
  ]],
  ["an authn JWKS cluster not serving AuthService", (t) => (filterIn(t, "authn").jwksCluster = "project"), [
    { path: "filters[3].authn.jwksCluster", message: 'cluster "project" does not serve mesh.auth.v1.AuthService (GetJwks)' },
  ]],
  ["a JWKS URL that is not https", (t) => Object.assign(filterIn(t, "authn"), { jwksCluster: null, jwksUrl: "http://auth.example.com/jwks" }), [
    { path: "filters[3].authn.jwksUrl", message: "must be an https:// URL (http:// only for localhost)" },
  ]],
  ["authn algorithms unspecified or repeated", (t) => (filterIn(t, "authn").allowedAlgorithms = ["EDDSA", "JWT_ALGORITHM_UNSPECIFIED", "EDDSA"]), [
    { path: "filters[3].authn.allowedAlgorithms[1]", message: "JWT_ALGORITHM_UNSPECIFIED is not an algorithm" },
    { path: "filters[3].authn.allowedAlgorithms[2]", message: "duplicate algorithm EDDSA" },
  ]],
  ["rate-limit tiers of 0", (t) => Object.assign(filterIn(t, "rateLimit"), { apiKey: { limit: 0 }, user: { burst: 0 }, anonymous: { period: "0s" } }), [
    { path: "filters[5].rateLimit.apiKey.limit", message: "must be at least 1, got 0" },
    { path: "filters[5].rateLimit.user.burst", message: "must be at least 1, got 0" },
    { path: "filters[5].rateLimit.anonymous.period", message: "must be longer than 0s, got 0s" },
  ]],
  ["a negative rate-limit tier", (t) => (filterIn(t, "rateLimit").user = { limit: -5 }), [
    { path: "filters[5].rateLimit.user.limit", message: "expected a whole number from 0 to 4294967295, got -5" },
  ]],
  ["an unknown enum value", (t) => (filterIn(t, "rateLimit").algorithm = "TOKEN_BUCKET"), [
    { path: "filters[5].rateLimit.algorithm", message: 'unknown value "TOKEN_BUCKET"; expected one of RATE_LIMIT_ALGORITHM_GCRA' },
  ]],
  ["CORS origins, credentials with *, methods", (t) => Object.assign(filterIn(t, "cors"), {
    allowedOrigins: ["*", "https://app.example.com/", "app.example.com"],
    allowCredentials: true,
    allowedMethods: ["get"],
    exposedHeaders: ["X Bad"],
  }), [
    { path: "filters[1].cors.allowedOrigins[1]", message: '"https://app.example.com/" is not an origin; write it as "https://app.example.com"' },
    { path: "filters[1].cors.allowedOrigins[2]", message: '"app.example.com" is not an http(s) origin' },
    { path: "filters[1].cors.allowCredentials", message: 'cannot be true with origin "*" (browsers refuse it)' },
    { path: "filters[1].cors.allowedMethods[0]", message: '"get" is not an upper-case HTTP method' },
    { path: "filters[1].cors.exposedHeaders[0]", message: '"X Bad" is not a header name' },
  ]],
  ["an access-log batch larger than its buffer", (t) => Object.assign(filterIn(t, "accessLog"), { maxBufferedRecords: 10, batchSize: 11 }), [
    { path: "filters[2].accessLog.batchSize", message: "must be at most 10, got 11" },
  ]],
  ["filters whose service has no cluster", (t) => t.clusters.splice(1, 2), [
    { path: "filters[2].accessLog", message: "needs a cluster serving mesh.logging.v1.LoggingService; none does" },
    { path: "filters[4].apiKey", message: "needs a cluster serving mesh.project.v1.ProjectService; none does" },
  ]],
  ["request-id and api-key header names", (t) => {
    filterIn(t, "requestId").headerName = "X-Request-Id";
    filterIn(t, "apiKey").headerName = "api key";
  }, [
    { path: "filters[0].requestId.headerName", message: '"X-Request-Id" is not a lower-case header name' },
    { path: "filters[4].apiKey.headerName", message: '"api key" is not a lower-case header name' },
  ]],
  ["a retry policy out of bounds", (t) => (filterIn(t, "router").retryPolicy = { maxAttempts: 0, budgetPercent: 0, backoffBase: "1s", backoffMax: "0.5s" }), [
    { path: "filters[7].router.retryPolicy.maxAttempts", message: "must be at least 1, got 0" },
    { path: "filters[7].router.retryPolicy.backoffMax", message: "must be at least backoffBase" },
    { path: "filters[7].router.retryPolicy.budgetPercent", message: "must be at least 1, got 0" },
  ]],
];

describe("validation", () => {
  it("accepts the built-in config unchanged", () => {
    expect(() => loadGatewayConfig({ text: JSON.stringify(baseTree()), env: {} })).not.toThrow();
  });

  it.each(cases)("reports %s with its path", (_rule, edit, expected) => {
    const tree = baseTree();
    edit(tree);
    expect(violationsOf(tree)).toEqual(expected);
  });

  it("reports several violations of different kinds at once", () => {
    const tree = baseTree();
    tree.listener = { prot: 1 };
    cluster(tree, 1).name = "auth";
    delete cluster(tree, 2).endpoints;
    filterIn(tree, "authn").jwksCluster = "identity";
    filterIn(tree, "rateLimit").user = { limit: 0 };
    tree.filters.unshift({});
    expect(violationsOf(tree, { GATEWAY_PORT: "http" })).toEqual([
      { path: "listener.prot", message: "unknown field (did you mean port?)" },
      { path: "GATEWAY_PORT", message: '"http" is not a port (0-65535)' },
      { path: "clusters[1].name", message: 'duplicate cluster name "auth" (also clusters[0])' },
      { path: "clusters[2]", message: "sets neither endpoints nor dnsName; set exactly one" },
      { path: "filters[0]", message: "names no filter; set one of requestId, cors, accessLog, authn, apiKey, rateLimit, cache, router" },
      { path: "filters[4].authn.jwksCluster", message: 'no cluster named "identity"' },
      { path: "filters[6].rateLimit.user.limit", message: "must be at least 1, got 0" },
    ]);
  });

  it("rejects a negative value in every duration field", () => {
    const json = configToJson(loadGatewayConfig({ env: {} }));
    const paths = durationPaths(json, "");
    expect(paths.length).toBeGreaterThan(40);
    for (const path of paths) {
      const tree = structuredClone(json) as Record<string, unknown>;
      setAt(tree, path, "-1s");
      const v = violationsOf(tree);
      expect(v.find((x) => x.path === path), path).toMatchObject({ message: expect.stringMatching(/^must (not be negative|be longer than 0s), got -1s$/) });
    }
  });
});

/** Paths of every value that reads as a duration ("15s"), in violation-path form. */
function durationPaths(v: unknown, path: string): string[] {
  if (typeof v === "string") return /^\d+(\.\d+)?s$/.test(v) ? [path] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => durationPaths(x, `${path}[${i}]`));
  if (typeof v === "object" && v !== null) return Object.entries(v).flatMap(([k, x]) => durationPaths(x, path ? `${path}.${k}` : k));
  return [];
}

function setAt(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== "");
  let node = root as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) node = node[k] as Record<string, unknown>;
  node[keys.at(-1)!] = value;
}

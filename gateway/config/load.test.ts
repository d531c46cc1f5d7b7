import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { JwtAlgorithm, LbPolicy, RateLimitAlgorithm, RateLimitFailureMode } from "../../gen/mesh/gateway/v1/config_pb.js";
import { Access } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { DEFAULT_CONFIG_FILE, loadGatewayConfig } from "./load.js";
import { configToJson, findFilter } from "./resolved-config.js";
import { baseTree, errorOf, filterIn, violationsOf } from "./testing.js";

const tmp = mkdtempSync(join(tmpdir(), "gateway-config-"));

describe("loadGatewayConfig: the built-in default", () => {
  it("loads gateway/gateway.yaml when no file is named", () => {
    const builtIn = loadGatewayConfig({ env: {} });
    expect(builtIn).toEqual(loadGatewayConfig({ file: DEFAULT_CONFIG_FILE, env: {} }));
    expect(builtIn.clusters.map((c) => [c.name, c.services, c.endpoints])).toEqual([
      ["auth", ["mesh.auth.v1.AuthService"], ["127.0.0.1:50051"]],
      ["project", ["mesh.project.v1.ProjectService"], ["127.0.0.1:50052"]],
      ["logging", ["mesh.logging.v1.LoggingService"], ["127.0.0.1:50053"]],
      ["analytics", ["mesh.analytics.v1.AnalyticsService"], ["127.0.0.1:50054"]],
    ]);
  });

  it("lists the filters in the default order, ending with the router", () => {
    const cfg = loadGatewayConfig({ env: {} });
    expect(cfg.filters.map((f) => f.config.case)).toEqual(["requestId", "cors", "accessLog", "authn", "apiKey", "rateLimit", "cache", "router"]);
  });

  it("fills every default", () => {
    const cfg = loadGatewayConfig({ env: {} });
    expect(cfg.listener).toMatchObject({ address: "0.0.0.0", port: 8080, adminPort: 9901, maxRequestBodyBytes: 1048576, maxJsonDepth: 64 });
    const auth = cfg.clusters[0]!;
    expect(auth.lbPolicy).toBe(LbPolicy.ROUND_ROBIN);
    expect(durationMs(auth.requestTimeout)).toBe(durationMs(findFilter(cfg, "router")!.defaultTimeout));
    expect(auth.circuitBreakers).toMatchObject({ maxConcurrentRequests: 1024, maxPendingRequests: 1024 });
    const authn = findFilter(cfg, "authn")!;
    expect(authn.jwksSource).toEqual({ case: "jwksCluster", value: "auth" });
    expect(authn.allowedAlgorithms).toEqual([JwtAlgorithm.EDDSA]);
    const rl = findFilter(cfg, "rateLimit")!;
    expect([rl.apiKey.limit, rl.user.limit, rl.anonymous.limit]).toEqual([1000, 100, 20]);
    expect([rl.apiKey.burst, durationMs(rl.user.period)]).toEqual([1000, 60_000]);
    expect([rl.algorithm, rl.failureMode]).toEqual([RateLimitAlgorithm.GCRA, RateLimitFailureMode.FAIL_OPEN]);
    expect(findFilter(cfg, "apiKey")!.headerName).toBe("x-api-key");
    expect(findFilter(cfg, "cors")!.exposedHeaders).toEqual(expect.arrayContaining(["X-Request-Id", "X-Cache", "Retry-After"]));
    expect(cfg.redis.url).toBe("");
  });

  it("matches the recorded default configuration", () => {
    expect(configToJson(loadGatewayConfig({ env: {} }))).toMatchSnapshot();
  });

  it("freezes the result deeply", () => {
    const cfg = loadGatewayConfig({ env: {} });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.clusters[0]!.endpoints)).toBe(true);
    expect(Object.isFrozen(findFilter(cfg, "rateLimit")!.user.period)).toBe(true);
  });

  it("does not share default objects between loads", () => {
    const a = loadGatewayConfig({ env: { GATEWAY_PORT: "1234" } });
    const b = loadGatewayConfig({ env: {} });
    expect([a.listener.port, b.listener.port]).toEqual([1234, 8080]);
    expect(findFilter(a, "rateLimit")!.user.period).not.toBe(findFilter(b, "rateLimit")!.user.period);
  });
});

describe("loadGatewayConfig: sources", () => {
  it("reads the file named by GATEWAY_CONFIG", () => {
    const tree = baseTree();
    tree.listener = { port: 18080 };
    const file = join(tmp, "env.yaml");
    writeFileSync(file, JSON.stringify(tree));
    expect(loadGatewayConfig({ env: { GATEWAY_CONFIG: file } }).listener.port).toBe(18080);
  });

  it("prefers an explicit file over GATEWAY_CONFIG", () => {
    expect(loadGatewayConfig({ file: DEFAULT_CONFIG_FILE, env: { GATEWAY_CONFIG: join(tmp, "absent.yaml") } }).listener.port).toBe(8080);
  });

  it("reports a missing file as one violation naming it", () => {
    const file = join(tmp, "absent.yaml");
    expect(errorOf(() => loadGatewayConfig({ file, env: {} })).violations).toEqual([
      { path: file, message: "cannot read the config file: no such file" },
    ]);
  });

  it("reports every YAML syntax error with its line", () => {
    const v = violationsOf("clusters: []\nclusters: []\nfilters: [\n");
    expect(v.every((x) => x.path === "yaml")).toBe(true);
    expect(v.map((x) => x.message)).toEqual(expect.arrayContaining([expect.stringMatching(/unique.*line 2, column 1/)]));
    expect(v.length).toBeGreaterThanOrEqual(2);
  });

  it("rejects an empty file for lack of clusters and filters", () => {
    expect(violationsOf("")).toEqual([
      { path: "clusters", message: "at least one cluster is required" },
      { path: "filters", message: "the chain is empty; list the filters in order, ending with router" },
    ]);
  });

  it("lists every violation in the error message", () => {
    const tree = baseTree();
    tree.listener = { port: 70000, maxJsonDepth: 0 };
    const err = errorOf(() => loadGatewayConfig({ text: JSON.stringify(tree), file: "my.yaml", env: {} }));
    expect(err.message).toBe(
      "invalid gateway configuration (my.yaml), 2 violations:\n" +
        "  - listener.port: must be at most 65535, got 70000\n" +
        "  - listener.maxJsonDepth: must be at least 1, got 0",
    );
  });
});

describe("loadGatewayConfig: values", () => {
  it("reads snake_case and lowerCamelCase keys alike", () => {
    const text = JSON.stringify({ ...baseTree(), listener: { admin_port: 9000, maxRequestBodyBytes: 10 } });
    expect(loadGatewayConfig({ text, env: {} }).listener).toMatchObject({ adminPort: 9000, maxRequestBodyBytes: 10 });
  });

  it("reads durations in proto3 JSON form", () => {
    const tree = baseTree();
    tree.listener = { idleTimeout: "0.25s", drain_timeout: "90s" };
    const l = loadGatewayConfig({ text: JSON.stringify(tree), env: {} }).listener;
    expect([durationMs(l.idleTimeout), durationMs(l.drainTimeout)]).toEqual([250, 90_000]);
  });

  it("rejects durations that are not seconds with an s", () => {
    const tree = baseTree();
    tree.listener = { idleTimeout: 5, drainTimeout: "1m", requestHeaderTimeout: "-2s" };
    expect(violationsOf(tree)).toEqual([
      { path: "listener.idleTimeout", message: 'expected a duration in seconds such as "5s" or "0.25s", got 5' },
      { path: "listener.drainTimeout", message: 'expected a duration in seconds such as "5s" or "0.25s", got "1m"' },
      { path: "listener.requestHeaderTimeout", message: "must be longer than 0s, got -2s" },
    ]);
  });

  it("accepts enum values with or without their type prefix", () => {
    const tree = baseTree();
    tree.clusters[0]!.lbPolicy = "LEAST_REQUEST";
    tree.clusters[1]!.lb_policy = "LB_POLICY_LEAST_REQUEST";
    filterIn(tree, "rateLimit").failureMode = "FAIL_CLOSED";
    const cfg = loadGatewayConfig({ text: JSON.stringify(tree), env: {} });
    expect([cfg.clusters[0]!.lbPolicy, cfg.clusters[1]!.lbPolicy]).toEqual([LbPolicy.LEAST_REQUEST, LbPolicy.LEAST_REQUEST]);
    expect(findFilter(cfg, "rateLimit")!.failureMode).toBe(RateLimitFailureMode.FAIL_CLOSED);
  });

  it("fills the fields a partial tier leaves out from that tier's default", () => {
    const tree = baseTree();
    Object.assign(filterIn(tree, "rateLimit"), { user: { period: "1s" }, anonymous: { limit: 5, burst: 2 } });
    const rl = findFilter(loadGatewayConfig({ text: JSON.stringify(tree), env: {} }), "rateLimit")!;
    expect([rl.user.limit, rl.user.burst, durationMs(rl.user.period)]).toEqual([100, 100, 1000]);
    expect([rl.anonymous.limit, rl.anonymous.burst]).toEqual([5, 2]);
  });

  it("keeps a cluster's own request timeout and defaults the others to the router's", () => {
    const tree = baseTree();
    tree.clusters[0]!.requestTimeout = "2s";
    filterIn(tree, "router").defaultTimeout = "7s";
    const cfg = loadGatewayConfig({ text: JSON.stringify(tree), env: {} });
    expect(cfg.clusters.map((c) => durationMs(c.requestTimeout))).toEqual([2000, 7000, 7000, 7000]);
  });

  it("takes a cluster's schema from gen/ unless it asks for reflection, whose defaults it fills", () => {
    const tree = baseTree();
    tree.clusters.push({ name: "greeter", services: ["demo.greeter.v1.Greeter"], endpoints: ["127.0.0.1:50060"], reflection: {} });
    tree.clusters.push({ name: "echo", services: ["demo.echo.v1.Echo"], endpoints: ["127.0.0.1:50061"], reflection: { refreshInterval: "5s", defaultAccess: "PUBLIC" } });
    const schemas = loadGatewayConfig({ text: JSON.stringify(tree), env: {} }).clusters.map((c) => c.schema);
    expect(schemas.slice(0, 4).map((s) => s.case)).toEqual(["builtin", "builtin", "builtin", "builtin"]);
    expect(schemas.slice(4).map((s) => (s.case === "reflection" ? [durationMs(s.value.refreshInterval), s.value.defaultAccess] : s.case))).toEqual([
      [30_000, Access.USER], [5_000, Access.PUBLIC],
    ]);
  });

  it("treats null as unset", () => {
    const tree = baseTree();
    tree.listener = { port: null };
    expect(loadGatewayConfig({ text: JSON.stringify(tree), env: {} }).listener.port).toBe(8080);
  });

  it("keeps an explicit 0 apart from unset where 0 means something", () => {
    const tree = baseTree();
    tree.listener = { port: 0, adminPort: 0 };
    expect(loadGatewayConfig({ text: JSON.stringify(tree), env: {} }).listener).toMatchObject({ port: 0, adminPort: 0 });
  });
});

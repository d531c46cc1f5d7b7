import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "./load.js";
import { findFilter } from "./resolved-config.js";
import { baseTree, violationsOf } from "./testing.js";
import { upstreamEnvName } from "./env-overrides.js";

const load = (env: NodeJS.ProcessEnv) => loadGatewayConfig({ env });

describe("environment overrides", () => {
  it("sets the listener ports", () => {
    expect(load({ GATEWAY_PORT: "18080", GATEWAY_ADMIN_PORT: "0" }).listener).toMatchObject({ port: 18080, adminPort: 0 });
  });

  it("sets the Redis URL", () => {
    expect(load({ REDIS_URL: "rediss://:secret@redis.mesh:6380/2" }).redis.url).toBe("rediss://:secret@redis.mesh:6380/2");
  });

  it("replaces the authn JWKS cluster with JWKS_URL", () => {
    const authn = findFilter(load({ JWKS_URL: "https://idp.example.com/.well-known/jwks.json" }), "authn")!;
    expect(authn.jwksSource).toEqual({ case: "jwksUrl", value: "https://idp.example.com/.well-known/jwks.json" });
  });

  it("replaces a cluster's endpoints with a host:port list", () => {
    const cfg = load({ UPSTREAM_AUTH: "auth-0.mesh:50051, 10.0.0.7:50051,[fd00::1]:50051" });
    expect(cfg.clusters[0]).toMatchObject({ endpoints: ["auth-0.mesh:50051", "10.0.0.7:50051", "[fd00::1]:50051"], dnsName: "", dnsPort: 0 });
  });

  it("turns a cluster to DNS discovery with dns:///name:port", () => {
    const cfg = load({ UPSTREAM_PROJECT: "dns:///project.mesh.svc.cluster.local:50052" });
    expect(cfg.clusters[1]).toMatchObject({ endpoints: [], dnsName: "project.mesh.svc.cluster.local", dnsPort: 50052 });
  });

  it("turns a DNS cluster from the file back to static endpoints", () => {
    const tree = baseTree();
    Object.assign(tree.clusters[1]!, { endpoints: [], dnsName: "project.local", dnsPort: 50052 });
    const cfg = loadGatewayConfig({ text: JSON.stringify(tree), env: { UPSTREAM_PROJECT: "127.0.0.1:6000" } });
    expect(cfg.clusters[1]).toMatchObject({ endpoints: ["127.0.0.1:6000"], dnsName: "", dnsPort: 0 });
  });

  it("names a hyphenated cluster's variable with underscores", () => {
    expect(upstreamEnvName("auth-v2")).toBe("UPSTREAM_AUTH_V2");
    const tree = baseTree();
    tree.clusters[0]!.name = "auth-v2";
    tree.filters[3] = { authn: { jwksCluster: "auth-v2" } };
    const cfg = loadGatewayConfig({ text: JSON.stringify(tree), env: { UPSTREAM_AUTH_V2: "10.1.1.1:50051" } });
    expect(cfg.clusters[0]!.endpoints).toEqual(["10.1.1.1:50051"]);
  });

  it("treats empty variables as unset", () => {
    const cfg = load({ GATEWAY_PORT: "", REDIS_URL: " ", UPSTREAM_AUTH: "", JWKS_URL: "" });
    expect([cfg.listener.port, cfg.redis.url, cfg.clusters[0]!.endpoints]).toEqual([8080, "", ["127.0.0.1:50051"]]);
  });

  it("reports every malformed variable by name, and applies none of them", () => {
    const env = {
      GATEWAY_PORT: "80a",
      GATEWAY_ADMIN_PORT: "65536",
      REDIS_URL: "localhost:6379",
      JWKS_URL: "http://idp.example.com/jwks",
      UPSTREAM_AUTH: "auth.mesh,127.0.0.1:99999",
      UPSTREAM_PROJECT: "dns:///project.mesh",
      UPSTREAM_BILLING: "127.0.0.1:1",
    };
    expect(violationsOf(baseTree(), env)).toEqual([
      { path: "GATEWAY_PORT", message: '"80a" is not a port (0-65535)' },
      { path: "GATEWAY_ADMIN_PORT", message: '"65536" is not a port (0-65535)' },
      { path: "REDIS_URL", message: "must be a redis:// or rediss:// URL" },
      { path: "JWKS_URL", message: "must be an https:// URL (http:// only for localhost)" },
      { path: "UPSTREAM_AUTH", message: '"auth.mesh" is not host:port (IPv6 as [::1]:port); expected host:port[,host:port...] or dns:///name:port' },
      { path: "UPSTREAM_AUTH", message: "port 99999 is not 1-65535; expected host:port[,host:port...] or dns:///name:port" },
      { path: "UPSTREAM_BILLING", message: "names no cluster (the overrides are UPSTREAM_AUTH, UPSTREAM_PROJECT, UPSTREAM_LOGGING, UPSTREAM_ANALYTICS)" },
      { path: "UPSTREAM_PROJECT", message: '"project.mesh" is not host:port (IPv6 as [::1]:port); expected dns:///name:port' },
    ]);
  });

  it("reports JWKS_URL when the chain has no authn filter", () => {
    const tree = baseTree();
    tree.filters = tree.filters.filter((f) => !("authn" in f));
    expect(violationsOf(tree, { JWKS_URL: "https://idp.example.com/jwks" })).toEqual([
      { path: "JWKS_URL", message: "is set but the filter chain has no authn filter" },
    ]);
  });

  it("refuses the embedded store in production", () => {
    expect(violationsOf(baseTree(), { NODE_ENV: "production" })).toEqual([
      { path: "redis.url", message: "is required when NODE_ENV=production (set REDIS_URL): the embedded store is refused in production" },
    ]);
    expect(load({ NODE_ENV: "production", REDIS_URL: "redis://redis:6379" }).redis.url).toBe("redis://redis:6379");
  });

  it("accepts a production config whose file names the Redis URL", () => {
    const tree = baseTree();
    tree.redis = { url: "redis://redis:6379" };
    expect(loadGatewayConfig({ text: JSON.stringify(tree), env: { NODE_ENV: "production" } }).redis.url).toBe("redis://redis:6379");
  });
});

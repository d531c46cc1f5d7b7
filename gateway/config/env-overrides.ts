import { create } from "@bufbuild/protobuf";
import { ListenerSchema, RedisSchema, type Cluster, type GatewayConfig } from "../../gen/mesh/gateway/v1/config_pb.js";
import { jwksUrlProblem, parseHostPort, redisUrlProblem, type HostPort } from "./addresses.js";
import type { Violation } from "./gateway-config-error.js";

/** Prefix of the per-cluster upstream overrides: UPSTREAM_AUTH, UPSTREAM_PROJECT, ... */
const UPSTREAM = "UPSTREAM_";

/**
 * Every environment variable the gateway process reads besides `UPSTREAM_<CLUSTER>` and the standard `OTEL_*`
 * ones: the config file, these overrides, and what `gateway/main.ts` and `lib/run-service.ts` read.
 */
export const GATEWAY_ENV_VARIABLES: readonly string[] = [
  "GATEWAY_CONFIG", "GATEWAY_PORT", "GATEWAY_ADMIN_PORT", "REDIS_URL", "JWKS_URL", "LOG_LEVEL", "NODE_ENV",
];

/** The variable overriding a cluster's upstreams: "auth-v2" → "UPSTREAM_AUTH_V2". */
export function upstreamEnvName(clusterName: string): string {
  return UPSTREAM + clusterName.toUpperCase().replaceAll("-", "_");
}

/**
 * Applies the deploy-specific environment variables to `cfg` in place (before
 * defaults and validation) and returns the violations of the ones that are
 * malformed or name nothing; those are not applied. Empty values count as
 * unset. Variables: GATEWAY_PORT, GATEWAY_ADMIN_PORT, REDIS_URL, JWKS_URL,
 * UPSTREAM_<CLUSTER> (comma-separated host:port list, or dns:///name:port).
 * Also: NODE_ENV=production without a Redis URL is a violation.
 */
export function applyEnvOverrides(cfg: GatewayConfig, env: NodeJS.ProcessEnv): Violation[] {
  const out: Violation[] = [];
  const get = (name: string) => (env[name]?.trim() ? env[name].trim() : undefined);
  const portOf = (name: string, set: (port: number) => void) => {
    const v = get(name);
    if (v === undefined) return;
    if (/^\d{1,5}$/.test(v) && Number(v) <= 65535) set(Number(v));
    else out.push({ path: name, message: `${JSON.stringify(v)} is not a port (0-65535)` });
  };
  portOf("GATEWAY_PORT", (port) => ((cfg.listener ??= create(ListenerSchema)).port = port));
  portOf("GATEWAY_ADMIN_PORT", (port) => ((cfg.listener ??= create(ListenerSchema)).adminPort = port));

  const redisUrl = get("REDIS_URL");
  const redisProblem = redisUrl === undefined ? undefined : redisUrlProblem(redisUrl);
  if (redisProblem !== undefined) out.push({ path: "REDIS_URL", message: redisProblem });
  else if (redisUrl !== undefined) (cfg.redis ??= create(RedisSchema)).url = redisUrl;
  if (get("NODE_ENV") === "production" && !cfg.redis?.url) {
    out.push({ path: "redis.url", message: "is required when NODE_ENV=production (set REDIS_URL): the embedded store is refused in production" });
  }

  const jwksUrl = get("JWKS_URL");
  if (jwksUrl !== undefined) out.push(...overrideJwks(cfg, jwksUrl));
  for (const name of Object.keys(env).filter((k) => k.startsWith(UPSTREAM)).sort()) {
    const v = get(name);
    if (v !== undefined) out.push(...overrideUpstream(cfg, name, v));
  }
  return out;
}

function overrideJwks(cfg: GatewayConfig, url: string): Violation[] {
  const problem = jwksUrlProblem(url);
  if (problem !== undefined) return [{ path: "JWKS_URL", message: problem }];
  let found = false;
  for (const f of cfg.filters) {
    if (f.config.case !== "authn") continue;
    f.config.value.jwksSource = { case: "jwksUrl", value: url };
    found = true;
  }
  return found ? [] : [{ path: "JWKS_URL", message: "is set but the filter chain has no authn filter" }];
}

function overrideUpstream(cfg: GatewayConfig, name: string, value: string): Violation[] {
  const cluster: Cluster | undefined = cfg.clusters.find((c) => upstreamEnvName(c.name) === name);
  if (cluster === undefined) {
    const known = cfg.clusters.map((c) => upstreamEnvName(c.name)).join(", ");
    return [{ path: name, message: `names no cluster (the overrides are ${known || "none"})` }];
  }
  if (value.startsWith("dns:///")) {
    const hp = parseHostPort(value.slice("dns:///".length));
    if (typeof hp === "string") return [{ path: name, message: `${hp}; expected dns:///name:port` }];
    setDns(cluster, hp);
    return [];
  }
  const parsed = value.split(",").map((s) => parseHostPort(s.trim()));
  const problems = parsed.filter((p) => typeof p === "string");
  if (problems.length > 0) return problems.map((p) => ({ path: name, message: `${p}; expected host:port[,host:port...] or dns:///name:port` }));
  cluster.endpoints = parsed.filter((p) => typeof p !== "string").map((p) => (p.host.includes(":") ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`));
  cluster.dnsName = "";
  cluster.dnsPort = 0;
  return [];
}

function setDns(cluster: Cluster, hp: HostPort): void {
  cluster.endpoints = [];
  cluster.dnsName = hp.host;
  cluster.dnsPort = hp.port;
}

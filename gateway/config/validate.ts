import { isIP } from "node:net";
import type { Listener } from "../../gen/mesh/gateway/v1/config_pb.js";
import { isHost, redisUrlProblem } from "./addresses.js";
import { createChecker, type Checker } from "./checker.js";
import type { Violation } from "./gateway-config-error.js";
import type { Resolved, ResolvedGatewayConfig } from "./resolved-config.js";
import { validateClusters } from "./validate-clusters.js";
import { validateFilters } from "./validate-filters.js";

/**
 * The semantic rules of a defaulted config — the ones proto3 JSON cannot
 * express — returning every violation, with its lowerCamelCase path.
 * `knownServices` are the gRPC services a cluster may declare.
 */
export function validateGatewayConfig(cfg: ResolvedGatewayConfig, knownServices: ReadonlySet<string>): Violation[] {
  const c = createChecker();
  validateListener(cfg.listener, c);
  if (cfg.redis.url !== "") {
    const problem = redisUrlProblem(cfg.redis.url);
    if (problem !== undefined) c.add("redis.url", problem);
  }
  validateClusters(cfg.clusters, knownServices, c);
  validateFilters(cfg, c);
  return c.violations;
}

function validateListener(l: Resolved<Listener>, c: Checker): void {
  if (isIP(l.address) === 0 && !isHost(l.address)) c.add("listener.address", `${JSON.stringify(l.address)} is not an IP address or host name`);
  c.within(l.port, "listener.port", 0, 65535);
  c.within(l.adminPort, "listener.adminPort", 0, 65535);
  if (l.port !== 0 && l.port === l.adminPort) c.add("listener.adminPort", `must differ from listener.port (${l.port})`);
  c.within(l.maxRequestBodyBytes, "listener.maxRequestBodyBytes", 1);
  c.within(l.maxJsonDepth, "listener.maxJsonDepth", 1, 1000);
  c.positive(l.requestHeaderTimeout, "listener.requestHeaderTimeout");
  c.positive(l.idleTimeout, "listener.idleTimeout");
  c.nonNegative(l.drainTimeout, "listener.drainTimeout");
}

import type { Cluster } from "../../gen/mesh/gateway/v1/config_pb.js";
import { isHost, isPort, parseHostPort } from "./addresses.js";
import { compareDurations, type Checker } from "./checker.js";
import type { Resolved } from "./resolved-config.js";

const clusterName = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const serviceName = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\.[A-Z][A-Za-z0-9_]*$/;

/**
 * Checks the clusters: at least one; unique names that are DNS labels; each
 * serving at least one service that no other cluster serves — a known
 * (compiled-in) one, or with `reflection` one that is not compiled in (its
 * routes would collide with the built-in service's); either valid
 * `endpoints` or `dnsName` + `dnsPort`; positive timeouts and limits.
 */
export function validateClusters(clusters: readonly Resolved<Cluster>[], knownServices: ReadonlySet<string>, c: Checker): void {
  if (clusters.length === 0) c.add("clusters", "at least one cluster is required");
  const names = new Map<string, number>();
  const servedBy = new Map<string, string>();
  clusters.forEach((cluster, i) => {
    const p = `clusters[${i}]`;
    if (cluster.name === "") c.add(`${p}.name`, "is required");
    else if (!clusterName.test(cluster.name)) c.add(`${p}.name`, `${JSON.stringify(cluster.name)} must be a DNS label: a-z, 0-9 and '-', starting with a letter`);
    const first = names.get(cluster.name);
    if (first !== undefined && cluster.name !== "") c.add(`${p}.name`, `duplicate cluster name ${JSON.stringify(cluster.name)} (also clusters[${first}])`);
    else names.set(cluster.name, i);
    if (cluster.services.length === 0) c.add(`${p}.services`, "at least one service is required");
    const reflected = cluster.schema.case === "reflection";
    if (cluster.schema.case === "reflection") c.positive(cluster.schema.value.refreshInterval, `${p}.reflection.refreshInterval`);
    cluster.services.forEach((svc, j) => {
      const at = `${p}.services[${j}]`;
      if (!serviceName.test(svc)) return c.add(at, `${JSON.stringify(svc)} is not a fully-qualified service name such as mesh.auth.v1.AuthService`);
      if (reflected && knownServices.has(svc)) return c.add(at, `${svc} is built into the gateway; serve it from a cluster without reflection`);
      if (!reflected && !knownServices.has(svc)) {
        return c.add(at, `unknown service ${svc}; known: ${[...knownServices].join(", ")} (a service the gateway was not built with needs reflection)`);
      }
      const owner = servedBy.get(svc);
      if (owner !== undefined) return c.add(at, `${svc} is already served by ${owner}`);
      servedBy.set(svc, `cluster ${JSON.stringify(cluster.name)} (${p})`);
    });
    validateUpstreams(cluster, p, c);
    validateLimits(cluster, p, c);
  });
}

function validateUpstreams(cluster: Resolved<Cluster>, p: string, c: Checker): void {
  const hasEndpoints = cluster.endpoints.length > 0;
  const hasDns = cluster.dnsName !== "";
  if (hasEndpoints && hasDns) c.add(p, "sets both endpoints and dnsName; set exactly one");
  if (!hasEndpoints && !hasDns) c.add(p, "sets neither endpoints nor dnsName; set exactly one");
  const seen = new Set<string>();
  cluster.endpoints.forEach((e, j) => {
    const hp = parseHostPort(e);
    if (typeof hp === "string") c.add(`${p}.endpoints[${j}]`, hp);
    else if (seen.has(e)) c.add(`${p}.endpoints[${j}]`, `duplicate endpoint ${e}`);
    seen.add(e);
  });
  if (hasDns && !isHost(cluster.dnsName)) c.add(`${p}.dnsName`, `${JSON.stringify(cluster.dnsName)} is not a DNS name`);
  if (hasDns && !isPort(cluster.dnsPort)) c.add(`${p}.dnsPort`, `must be 1-65535 with dnsName, got ${cluster.dnsPort}`);
  if (!hasDns && cluster.dnsPort !== 0) c.add(`${p}.dnsPort`, "is only used with dnsName");
  c.positive(cluster.dnsRefreshInterval, `${p}.dnsRefreshInterval`);
}

function validateLimits(cluster: Resolved<Cluster>, p: string, c: Checker): void {
  c.positive(cluster.connectTimeout, `${p}.connectTimeout`);
  c.positive(cluster.requestTimeout, `${p}.requestTimeout`);
  c.within(cluster.circuitBreakers.maxConcurrentRequests, `${p}.circuitBreakers.maxConcurrentRequests`, 1);
  const hc = cluster.healthCheck;
  c.positive(hc.interval, `${p}.healthCheck.interval`);
  c.positive(hc.timeout, `${p}.healthCheck.timeout`);
  if (compareDurations(hc.timeout, hc.interval) >= 0) c.add(`${p}.healthCheck.timeout`, "must be shorter than healthCheck.interval");
  c.within(hc.unhealthyThreshold, `${p}.healthCheck.unhealthyThreshold`, 1);
  c.within(hc.healthyThreshold, `${p}.healthCheck.healthyThreshold`, 1);
  const od = cluster.outlierDetection;
  c.within(od.consecutiveFailures, `${p}.outlierDetection.consecutiveFailures`, 1);
  c.positive(od.baseEjectionTime, `${p}.outlierDetection.baseEjectionTime`);
  c.within(od.maxEjectionPercent, `${p}.outlierDetection.maxEjectionPercent`, 0, 100);
}

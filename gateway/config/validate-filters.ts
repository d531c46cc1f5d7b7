import { FilterSchema, JwtAlgorithm } from "../../gen/mesh/gateway/v1/config_pb.js";
import { jwksUrlProblem, originProblem } from "./addresses.js";
import { compareDurations, type Checker } from "./checker.js";
import type { FilterConfig, FilterName, ResolvedGatewayConfig } from "./resolved-config.js";

type Rule<N extends FilterName> = (f: FilterConfig<N>, p: string, cfg: ResolvedGatewayConfig, c: Checker) => void;

const FILTER_NAMES = FilterSchema.fields.map((f) => f.localName);
const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/; // an RFC 9110 token: header and method names
const lowerToken = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * Checks the filter chain: every entry names one filter, none twice, in the
 * one order the gateway runs them (the fields' order in `Filter`; any may be
 * left out), the router last; then each filter's own config and its references (the clusters
 * the access log, authn and api-key filters call).
 */
export function validateFilters(cfg: ResolvedGatewayConfig, c: Checker): void {
  if (cfg.filters.length === 0) c.add("filters", "the chain is empty; list the filters in order, ending with router");
  const seen = new Map<string, number>();
  let lastRank = -1;
  cfg.filters.forEach((f, i) => {
    const p = `filters[${i}]`;
    const name = (f.config as { case: FilterName | undefined }).case;
    if (name === undefined) return c.add(p, `names no filter; set one of ${FILTER_NAMES.join(", ")}`);
    const first = seen.get(name);
    if (first !== undefined) c.add(p, `duplicate filter ${name} (also filters[${first}])`);
    seen.set(name, i);
    if (name === "router" && i !== cfg.filters.length - 1) c.add(p, "router must be the last filter");
    const rank = FILTER_NAMES.indexOf(name);
    if (rank < lastRank) c.add(p, `${name} must come before ${FILTER_NAMES[lastRank]}: the gateway runs its filters in the order ${FILTER_NAMES.join(", ")} (any may be left out)`);
    lastRank = Math.max(lastRank, rank);
    (RULES[name] as Rule<FilterName>)(f.config.value, `${p}.${name}`, cfg, c);
  });
  if (cfg.filters.length > 0 && !seen.has("router")) c.add("filters", "the chain must end with router");
}

const RULES: { [N in FilterName]: Rule<N> } = {
  requestId(f, p, _cfg, c) {
    if (!lowerToken.test(f.headerName)) c.add(`${p}.headerName`, `${JSON.stringify(f.headerName)} is not a lower-case header name`);
  },
  cors(f, p, _cfg, c) {
    f.allowedOrigins.forEach((o, i) => {
      const problem = originProblem(o);
      if (problem !== undefined) c.add(`${p}.allowedOrigins[${i}]`, problem);
    });
    if (f.allowCredentials && f.allowedOrigins.includes("*")) c.add(`${p}.allowCredentials`, 'cannot be true with origin "*" (browsers refuse it)');
    f.allowedMethods.forEach((m, i) => {
      if (!/^[A-Z]+$/.test(m)) c.add(`${p}.allowedMethods[${i}]`, `${JSON.stringify(m)} is not an upper-case HTTP method`);
    });
    for (const key of ["allowedHeaders", "exposedHeaders"] as const) {
      f[key].forEach((h, i) => {
        if (!token.test(h)) c.add(`${p}.${key}[${i}]`, `${JSON.stringify(h)} is not a header name`);
      });
    }
    c.nonNegative(f.maxAge, `${p}.maxAge`);
  },
  accessLog(f, p, cfg, c) {
    c.within(f.maxBufferedRecords, `${p}.maxBufferedRecords`, 1);
    c.within(f.batchSize, `${p}.batchSize`, 1, Math.max(1, f.maxBufferedRecords));
    c.positive(f.flushInterval, `${p}.flushInterval`);
    requireService(cfg, "mesh.logging.v1.LoggingService", p, c);
  },
  authn(f, p, cfg, c) {
    if (f.jwksSource.case === "jwksCluster") {
      const cluster = cfg.clusters.find((cl) => cl.name === f.jwksSource.value);
      if (cluster === undefined) c.add(`${p}.jwksCluster`, `no cluster named ${JSON.stringify(f.jwksSource.value)}`);
      else if (!cluster.services.includes("mesh.auth.v1.AuthService")) {
        c.add(`${p}.jwksCluster`, `cluster ${JSON.stringify(cluster.name)} does not serve mesh.auth.v1.AuthService (GetJwks)`);
      }
    } else {
      const problem = jwksUrlProblem(f.jwksSource.value);
      if (problem !== undefined) c.add(`${p}.jwksUrl`, problem);
    }
    if (f.issuer.trim() === "") c.add(`${p}.issuer`, "must not be blank");
    f.audiences.forEach((a, i) => {
      if (a.trim() === "") c.add(`${p}.audiences[${i}]`, "must not be blank");
    });
    c.nonNegative(f.clockLeeway, `${p}.clockLeeway`);
    f.allowedAlgorithms.forEach((alg, i) => {
      if (alg === JwtAlgorithm.UNSPECIFIED) c.add(`${p}.allowedAlgorithms[${i}]`, "JWT_ALGORITHM_UNSPECIFIED is not an algorithm");
      else if (f.allowedAlgorithms.indexOf(alg) !== i) c.add(`${p}.allowedAlgorithms[${i}]`, `duplicate algorithm ${JwtAlgorithm[alg]}`);
    });
    c.within(f.verifiedTokenCacheSize, `${p}.verifiedTokenCacheSize`, 1);
    c.positive(f.jwksMinRefetchInterval, `${p}.jwksMinRefetchInterval`);
  },
  apiKey(f, p, cfg, c) {
    if (!lowerToken.test(f.headerName)) c.add(`${p}.headerName`, `${JSON.stringify(f.headerName)} is not a lower-case header name`);
    c.nonNegative(f.positiveCacheTtl, `${p}.positiveCacheTtl`);
    c.nonNegative(f.negativeCacheTtl, `${p}.negativeCacheTtl`);
    requireService(cfg, "mesh.project.v1.ProjectService", p, c);
  },
  rateLimit(f, p, _cfg, c) {
    for (const tier of ["apiKey", "user", "anonymous"] as const) {
      c.within(f[tier].limit, `${p}.${tier}.limit`, 1);
      // burst defaults to limit: a bad limit alone should not be reported twice
      if (f[tier].limit >= 1) c.within(f[tier].burst, `${p}.${tier}.burst`, 1);
      c.positive(f[tier].period, `${p}.${tier}.period`);
    }
    c.positive(f.redisCommandTimeout, `${p}.redisCommandTimeout`);
  },
  cache(f, p, _cfg, c) {
    c.within(f.maxEntryBytes, `${p}.maxEntryBytes`, 1);
    c.nonNegative(f.defaultTtl, `${p}.defaultTtl`);
  },
  router(f, p, _cfg, c) {
    c.positive(f.defaultTimeout, `${p}.defaultTimeout`);
    const r = f.retryPolicy;
    c.within(r.maxAttempts, `${p}.retryPolicy.maxAttempts`, 1, 10);
    c.positive(r.backoffBase, `${p}.retryPolicy.backoffBase`);
    c.positive(r.backoffMax, `${p}.retryPolicy.backoffMax`);
    if (compareDurations(r.backoffMax, r.backoffBase) < 0) c.add(`${p}.retryPolicy.backoffMax`, "must be at least backoffBase");
    c.within(r.budgetPercent, `${p}.retryPolicy.budgetPercent`, 1, 100);
  },
};

function requireService(cfg: ResolvedGatewayConfig, service: string, p: string, c: Checker): void {
  if (!cfg.clusters.some((cl) => cl.services.includes(service))) c.add(p, `needs a cluster serving ${service}; none does`);
}

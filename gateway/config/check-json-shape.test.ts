import { describe, expect, it } from "vitest";
import { GatewayConfigSchema } from "../../gen/mesh/gateway/v1/config_pb.js";
import { checkJsonShape } from "./check-json-shape.js";
import { baseTree, filterIn, violationsOf } from "./testing.js";

describe("checkJsonShape", () => {
  it("reports unknown fields at every depth in one go, with their paths", () => {
    const tree = baseTree();
    tree.listner = {};
    tree.listener = { prot: 1 };
    tree.clusters[1]!.endpoint = ["127.0.0.1:1"];
    tree.clusters[2]!.healthCheck = { intervall: "5s" };
    filterIn(tree, "rateLimit").user = { limit: 5, per: "1s" };
    tree.filters.push({ bogus: {} });
    expect(violationsOf(tree).filter((v) => v.message.startsWith("unknown field"))).toEqual([
      { path: "clusters[1].endpoint", message: "unknown field (did you mean endpoints?)" },
      { path: "clusters[2].healthCheck.intervall", message: "unknown field (did you mean interval?)" },
      { path: "filters[5].rateLimit.user.per", message: "unknown field" },
      { path: "filters[8].bogus", message: "unknown field" },
      { path: "listner", message: "unknown field (did you mean listener?)" },
      { path: "listener.prot", message: "unknown field (did you mean port?)" },
    ]);
  });

  it("keeps the user's spelling of a key in the path", () => {
    const { violations } = checkJsonShape(GatewayConfigSchema, { listener: { admin_port: "x" } });
    expect(violations).toEqual([{ path: "listener.admin_port", message: 'expected a whole number from 0 to 4294967295, got "x"' }]);
  });

  it("reports values of the wrong type, element by element", () => {
    const { violations, json } = checkJsonShape(GatewayConfigSchema, {
      listener: { address: 5, port: -1, maxJsonDepth: 1.5 },
      clusters: [{ name: "a", endpoints: ["x:1", 7], services: "mesh.auth.v1.AuthService" }, "oops"],
      filters: [{ cors: { allowCredentials: "yes" } }],
    });
    expect(violations).toEqual([
      { path: "listener.address", message: "expected a string, got 5" },
      { path: "listener.port", message: "expected a whole number from 0 to 4294967295, got -1" },
      { path: "listener.maxJsonDepth", message: "expected a whole number from 0 to 4294967295, got 1.5" },
      { path: "clusters[0].endpoints[1]", message: "expected a string, got 7" },
      { path: "clusters[0].services", message: 'expected a list, got "mesh.auth.v1.AuthService"' },
      { path: "clusters[1]", message: 'expected a mapping of Cluster fields, got "oops"' },
      { path: "filters[0].cors.allowCredentials", message: 'expected true or false, got "yes"' },
    ]);
    // what was wrong is left out; what was right is kept
    expect(json).toEqual({ listener: {}, clusters: [{ name: "a", endpoints: ["x:1"] }], filters: [{ cors: {} }] });
  });

  it("reports unknown enum values, named or numbered", () => {
    const { violations } = checkJsonShape(GatewayConfigSchema, {
      clusters: [{ lbPolicy: "RANDOM" }, { lbPolicy: 7 }],
      filters: [{ rateLimit: { failureMode: "FAIL_OPEN" } }, { authn: { allowedAlgorithms: ["EDDSA", "HS256"] } }],
    });
    expect(violations).toEqual([
      { path: "clusters[0].lbPolicy", message: 'unknown value "RANDOM"; expected one of LB_POLICY_ROUND_ROBIN, LB_POLICY_LEAST_REQUEST' },
      { path: "clusters[1].lbPolicy", message: "unknown value 7; expected one of LB_POLICY_ROUND_ROBIN, LB_POLICY_LEAST_REQUEST" },
      {
        path: "filters[1].authn.allowedAlgorithms[1]",
        message: 'unknown value "HS256"; expected one of JWT_ALGORITHM_EDDSA, JWT_ALGORITHM_ES256, JWT_ALGORITHM_ES384, JWT_ALGORITHM_RS256, JWT_ALGORITHM_PS256',
      },
    ]);
  });

  it("reports a filter entry naming two filters, and a oneof set twice", () => {
    const { violations } = checkJsonShape(GatewayConfigSchema, {
      filters: [{ cors: {}, router: {} }, { authn: { jwksCluster: "auth", jwks_url: "https://x" } }],
    });
    expect(violations).toEqual([
      { path: "filters[0].router", message: "conflicts with cors: set only one of requestId, cors, accessLog, authn, apiKey, rateLimit, cache, router" },
      { path: "filters[1].authn.jwks_url", message: "conflicts with jwksCluster: set only one of jwksCluster, jwksUrl" },
    ]);
  });

  it("reports a field given under both its names", () => {
    const { violations } = checkJsonShape(GatewayConfigSchema, { listener: { adminPort: 1, admin_port: 2 } });
    expect(violations).toEqual([{ path: "listener.admin_port", message: "the same field as adminPort; set it once" }]);
  });

  it("hints at the mapping form when a filter is listed by name alone", () => {
    expect(checkJsonShape(GatewayConfigSchema, { filters: ["router"] }).violations).toEqual([
      { path: "filters[0]", message: 'expected a mapping of Filter fields, got "router" (write router: {})' },
    ]);
  });

  it("reports a top level that is not a mapping", () => {
    expect(checkJsonShape(GatewayConfigSchema, ["a"]).violations).toEqual([
      { path: "", message: "expected a mapping of GatewayConfig fields, got a list" },
    ]);
  });
});

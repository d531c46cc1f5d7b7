import net, { type AddressInfo } from "node:net";
import { createServiceImplSpec } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcServer, type GrpcServer } from "../../lib/grpc/server.js";
import { createLogger } from "../../lib/logger.js";
import { createCluster, type Cluster } from "../clusters/cluster.js";
import { loadGatewayConfig } from "../config/load.js";
import { baseTree, filterIn } from "../config/testing.js";
import { createGatewayMetrics } from "../stats/gateway-metrics.js";
import { createHealthChecker, type HealthChecker } from "../stats/health.js";
import { createRegistry } from "../stats/registry.js";
import { startAdmin, type Admin } from "./admin.js";

function configWithSecrets() {
  const tree = baseTree();
  tree.redis = { url: "redis://user:secret@host:6379" };
  Object.assign(filterIn(tree, "authn"), { jwksCluster: null, jwksUrl: "https://idp.example.com/jwks.json?access_token=tok3n" });
  return loadGatewayConfig({ text: JSON.stringify(tree), env: {} });
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe("admin listener", () => {
  let service: GrpcServer;
  let serviceAddress: string;
  let deadAddress: string;
  let clusters: Map<string, Cluster>;
  let health: HealthChecker;
  let admin: Admin;
  let ready = false;
  let failScrape = false;
  const logLines: string[] = [];
  const registry = createRegistry();
  const metrics = createGatewayMetrics(registry);
  registry.collected({ name: "probe", type: "gauge", help: "Fails on demand.", collect: (emit) => {
    if (failScrape) throw new Error("scrape broke");
    emit(1);
  } });
  const get = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${admin.port}${path}`, init);

  beforeAll(async () => {
    service = createGrpcServer({ services: [createServiceImplSpec(LoggingService, {})] });
    serviceAddress = `127.0.0.1:${await service.listen("127.0.0.1", 0)}`;
    deadAddress = `127.0.0.1:${await closedPort()}`;
    clusters = new Map([
      ["logging", createCluster({ name: "logging", endpoints: [serviceAddress] })],
      ["analytics", createCluster({ name: "analytics", endpoints: [deadAddress] })],
    ]);
    health = createHealthChecker({ clusters, cacheMs: 0 });
    admin = await startAdmin({
      port: 0, host: "127.0.0.1", registry, clusters, config: configWithSecrets(), ready: () => ready, health,
      logger: createLogger({ service: "admin-test", destination: { write: (s: string) => void logLines.push(s) } }),
    });
  });
  afterAll(async () => {
    await admin.close();
    health.close();
    for (const c of clusters.values()) c.close();
    await service.shutdown(100);
  });

  it("answers /ready 503 while not ready and 200 once ready", async () => {
    ready = false;
    const starting = await get("/ready");
    expect([starting.status, await starting.text()]).toEqual([503, "not ready\n"]);
    ready = true;
    const serving = await get("/ready");
    expect([serving.status, await serving.text()]).toEqual([200, "ready\n"]);
    expect(serving.headers.get("cache-control")).toBe("no-store");
  });

  it("serves /stats as Prometheus text 0.0.4 with the current values", async () => {
    metrics.request({ route: "/api/v1/projects", method: "GET", status: 200, seconds: 0.01 });
    metrics.rateLimited.inc({ tier: "user" });
    const res = await get("/stats");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain('mesh_gateway_requests_total{route="/api/v1/projects",method="GET",status="200"} 1\n');
    expect(text).toContain('mesh_gateway_rate_limited_total{tier="user"} 1\n');
    expect(text).toContain("# TYPE mesh_gateway_request_duration_seconds histogram\n");
  });

  it("lists /clusters with endpoint counters and health", async () => {
    const res = await get("/clusters");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ clusters: [
      { name: "logging", health: "ok", latency: expect.any(Number), overflows: 0, inFlight: 0, pending: 0,
        endpoints: [{ address: serviceAddress, inFlight: 0, requests: 0, failures: 0, probe: { status: "ok", latency: expect.any(Number), detail: "SERVING" } }] },
      { name: "analytics", health: "down", latency: expect.any(Number), overflows: 0, inFlight: 0, pending: 0,
        endpoints: [{ address: deadAddress, inFlight: 0, requests: 0, failures: 0, probe: { status: "down", latency: expect.any(Number), detail: "UNAVAILABLE" } }] },
    ] });
  });

  it("dumps the config as proto3 JSON with credentials and URL query values redacted", async () => {
    const res = await get("/config_dump");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("secret");
    expect(text).not.toContain("tok3n");
    const dump = JSON.parse(text) as { redis: { url: string }; clusters: { name: string }[]; filters: Record<string, { jwksUrl?: string }>[]; listener: { adminPort: number } };
    expect(dump.redis.url).toBe("redis://***@host:6379");
    expect(dump.filters.find((f) => "authn" in f)?.authn?.jwksUrl).toBe("https://idp.example.com/jwks.json?access_token=***");
    expect(dump.clusters.map((c) => c.name)).toEqual(["auth", "project", "logging", "analytics"]);
    expect(dump.listener.adminPort).toBe(9901);
  });

  it("answers an unknown path with a JSON 404", async () => {
    const res = await get("/nope?x=1");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "NOT_FOUND", statusCode: 404, message: "no admin endpoint /nope" });
  });

  it("answers other methods than GET with a JSON 405 naming GET", async () => {
    const res = await get("/stats", { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET");
    expect(await res.json()).toMatchObject({ error: "METHOD_NOT_ALLOWED", statusCode: 405 });
  });

  it("answers a failing endpoint with a JSON 500 and logs the cause", async () => {
    failScrape = true;
    try {
      const res = await get("/stats");
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: "INTERNAL", message: "internal error" });
      expect(logLines.some((l) => l.includes("admin request failed") && l.includes("scrape broke"))).toBe(true);
    } finally {
      failScrape = false;
    }
  });

  it("frees its port on close", async () => {
    const other = await startAdmin({ port: 0, host: "127.0.0.1", registry, clusters, config: configWithSecrets(), ready: () => true,
      logger: createLogger({ service: "admin-test", level: "silent" }) });
    expect((await fetch(`http://127.0.0.1:${other.port}/ready`)).status).toBe(200);
    await other.close();
    await expect(fetch(`http://127.0.0.1:${other.port}/ready`)).rejects.toThrow();
  });
});

import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { createServiceImplSpec } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcServer, type GrpcServer } from "../../lib/grpc/server.js";
import { createHealthChecker, healthHandler, type HealthChecker, type HealthReport, type HealthTarget } from "./health.js";

// Real gRPC servers (any service: grpc.health.v1 comes with every server),
// a TCP server that accepts and never answers, and a port nobody listens on.
const target = (name: string, ...addresses: string[]): HealthTarget => ({ name, endpoints: () => addresses.map((address) => ({ address })) });

async function startService(): Promise<{ server: GrpcServer; address: string }> {
  const server = createGrpcServer({ services: [createServiceImplSpec(LoggingService, {})] });
  const port = await server.listen("127.0.0.1", 0);
  return { server, address: `127.0.0.1:${port}` };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

describe("health checker", () => {
  let auth: { server: GrpcServer; address: string };
  let project: { server: GrpcServer; address: string };
  const silentSockets = new Set<net.Socket>();
  const silent = net.createServer((s) => { silentSockets.add(s); }); // accepts, never answers
  let hung: string;
  let closed: string;
  let checker: HealthChecker | undefined;

  beforeAll(async () => {
    [auth, project] = await Promise.all([startService(), startService()]);
    hung = `127.0.0.1:${await listen(silent)}`;
    const spare = net.createServer();
    closed = `127.0.0.1:${await listen(spare)}`;
    await new Promise((r) => spare.close(r));
  });
  afterEach(() => checker?.close());
  afterAll(async () => {
    for (const s of silentSockets) s.destroy();
    await new Promise((r) => silent.close(r));
    await Promise.all([auth.server.shutdown(100), project.server.shutdown(100)]);
  });

  it("reports every service ok when each answers SERVING", async () => {
    checker = createHealthChecker({ clusters: new Map([["auth", target("auth", auth.address)], ["project", target("project", project.address)]]) });
    const report = await checker.check();
    expect(report.status).toBe("ok");
    expect(report.services.map(({ name, status }) => ({ name, status }))).toEqual([{ name: "auth", status: "ok" }, { name: "project", status: "ok" }]);
    expect(report.services[0]!.endpoints).toEqual([{ address: auth.address, status: "ok", latency: expect.any(Number), detail: "SERVING" }]);
  });

  it("marks a service that never answers down after the timeout, without hanging", async () => {
    checker = createHealthChecker({ clusters: [target("auth", auth.address), target("stuck", hung)], timeoutMs: 300 });
    const started = performance.now();
    const report = await checker.check();
    const elapsed = performance.now() - started;
    expect(report.status).toBe("degraded");
    expect(report.services[1]).toMatchObject({ name: "stuck", status: "down", endpoints: [{ detail: "DEADLINE_EXCEEDED" }] });
    expect(report.services[1]!.latency).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_500);
    expect(report.services[0]!.status).toBe("ok");
  });

  it("marks a service whose port is closed down as UNAVAILABLE", async () => {
    checker = createHealthChecker({ clusters: [target("gone", closed)], timeoutMs: 5_000 });
    const started = performance.now();
    const report = await checker.check();
    expect(report).toMatchObject({ status: "degraded", services: [{ name: "gone", status: "down", endpoints: [{ detail: "UNAVAILABLE" }] }] });
    expect(performance.now() - started).toBeLessThan(2_500);
  });

  it("marks a service that answers NOT_SERVING down", async () => {
    checker = createHealthChecker({ clusters: [target("project", project.address)], cacheMs: 0 });
    project.server.health.setStatus("", "NOT_SERVING");
    try {
      expect((await checker.check()).services[0]).toMatchObject({ status: "down", endpoints: [{ detail: "NOT_SERVING" }] });
    } finally {
      project.server.health.setStatus("", "SERVING");
    }
    expect((await checker.check()).services[0]!.status).toBe("ok");
  });

  it("counts a service ok while one of its endpoints answers", async () => {
    checker = createHealthChecker({ clusters: [target("auth", closed, auth.address)] });
    const [svc] = (await checker.check()).services;
    expect(svc).toMatchObject({ status: "ok", endpoints: [{ address: closed, status: "down" }, { address: auth.address, status: "ok" }] });
  });

  it("marks a cluster without endpoints down", async () => {
    checker = createHealthChecker({ clusters: [target("empty")] });
    expect(await checker.check()).toEqual({ status: "degraded", services: [{ name: "empty", status: "down", latency: 0, endpoints: [] }] });
  });

  it("shares one round of probes between concurrent checks and reuses a report for cacheMs", async () => {
    let t = 0;
    let rounds = 0;
    const counted: HealthTarget = { name: "auth", endpoints: () => { rounds++; return [{ address: auth.address }]; } };
    checker = createHealthChecker({ clusters: [counted], cacheMs: 1_000, now: () => t });
    const [a, b, c] = await Promise.all([checker.check(), checker.check(), checker.check()]);
    expect(rounds).toBe(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    t = 999;
    expect(await checker.check()).toBe(a);
    expect(rounds).toBe(1);
    t = 1_000;
    await checker.check();
    expect(rounds).toBe(2);
  });
});

describe("GET /health", () => {
  const report = (status: HealthReport["status"]): HealthReport => ({
    status,
    services: [
      { name: "auth", status: "ok", latency: 2, endpoints: [{ address: "10.0.0.1:50051", status: "ok", latency: 2, detail: "SERVING" }] },
      { name: "project", status: status === "ok" ? "ok" : "down", latency: 1000, endpoints: [] },
    ],
  });
  let current: HealthReport = report("ok");
  const handler = healthHandler({ check: async () => current, close: () => undefined }, { startedAt: Date.UTC(2026, 10, 22, 10), now: () => Date.UTC(2026, 10, 22, 10, 2, 3, 900) });
  const server = http.createServer((req, res) => void handler(req, res, new Headers({ "x-request-id": "rid-1" })));
  let base: string;
  beforeAll(async () => { base = `http://127.0.0.1:${await listen(server)}`; });
  afterAll(() => new Promise((r) => server.close(r)));

  it("answers 200 with the gateway and every service when all are ok", async () => {
    current = report("ok");
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("x-request-id")).toBe("rid-1");
    expect(await res.json()).toEqual({
      status: "ok", service: "gateway", timestamp: "2026-11-22T10:02:03.900Z", uptime: 123,
      services: [{ name: "auth", status: "ok", latency: 2 }, { name: "project", status: "ok", latency: 1000 }],
    });
  });

  it("answers 503 degraded naming the service that is down, without endpoint addresses", async () => {
    current = report("degraded");
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ status: "degraded", services: [{ name: "auth", status: "ok" }, { name: "project", status: "down", latency: 1000 }] });
    expect(text).not.toContain("10.0.0.1");
  });

  it("answers 405 with the error envelope to other methods", async () => {
    const res = await fetch(`${base}/health`, { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    expect(await res.json()).toMatchObject({ error: "METHOD_NOT_ALLOWED", statusCode: 405, requestId: "rid-1" });
  });

  it("answers 503 through a real checker when a service's port is closed", async () => {
    const spare = net.createServer();
    const port = await listen(spare);
    await new Promise((r) => spare.close(r));
    const checker = createHealthChecker({ clusters: [target("analytics", `127.0.0.1:${port}`)] });
    const real = http.createServer((req, res) => void healthHandler(checker, { startedAt: Date.now() })(req, res));
    try {
      const res = await fetch(`http://127.0.0.1:${await listen(real)}/health`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: "degraded", services: [{ name: "analytics", status: "down" }] });
    } finally {
      checker.close();
      await new Promise((r) => real.close(r));
    }
  });
});

import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { MESH_VERSION } from "../../lib/run-service.js";
import { describeWithServer, uniqueSchema } from "../support/integration.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.js";
import { startMeshProcess, type MeshProcess, type MeshProcessName } from "../support/mesh.js";
import { freePort, stopProcess, untilAccepting } from "../support/processes.js";

// The whole mesh as it runs in production, one process per service plus the gateway, on PostgreSQL, FerretDB
// (MongoDB) and Redis, exporting OTLP/HTTP to a receiver inside this test: what a user finds in Jaeger.

/** The spans of one trace, and checks of its shape. */
function traceOf(spans: readonly ReceivedSpan[], traceId: string) {
  const own = spans.filter((s) => s.traceId === traceId);
  const byId = new Map(own.map((s) => [s.spanId, s]));
  const service = (s: ReceivedSpan) => String(s.resource["service.name"]);
  /** Whether `ancestor` is `s`'s parent, grandparent, … */
  const descends = (s: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
    for (let p = byId.get(s.parentSpanId); p; p = byId.get(p.parentSpanId)) if (p === ancestor) return true;
    return false;
  };
  return {
    spans: own,
    service,
    descends,
    find: (service_: string, pred: (s: ReceivedSpan) => boolean) => own.find((s) => service(s) === service_ && pred(s)),
    /** Every span's parent is in the trace except the root's. */
    orphans: () => own.filter((s) => s.parentSpanId !== "" && !byId.has(s.parentSpanId)),
  };
}

describeWithServer("TEST_DATABASE_URL", "one trace per request across the mesh's processes (OTLP/HTTP)", (databaseUrl) => {
  const mongoUrl = process.env.TEST_MONGO_URL;
  const redisUrl = process.env.TEST_REDIS_URL;
  let receiver: OtlpReceiver;
  const procs = new Map<string, MeshProcess>();
  let gatewayPort = 0;
  let gw = "";
  const email = `${uniqueSchema("ada")}@example.com`;
  const password = "analytical engine 1";
  let token = "";

  beforeAll(async () => {
    if (!mongoUrl || !redisUrl) throw new Error("TEST_MONGO_URL and TEST_REDIS_URL must be set too (.ci/run sets all three)");
    receiver = await startOtlpReceiver();
    const [auth, project, logging, analytics, gateway, admin] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
    gatewayPort = gateway!;
    gw = `http://127.0.0.1:${gatewayPort}`;
    const common = {
      NODE_ENV: "test", LOG_LEVEL: "debug", HOST: "127.0.0.1",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100",
      PROJECT_ADDRESS: `127.0.0.1:${project}`, LOGGING_ADDRESS: `127.0.0.1:${logging}`, AUTH_ADDRESS: `127.0.0.1:${auth}`,
    };
    const mongoDb = uniqueSchema("trace");
    const specs: [string, string, number, Record<string, string>][] = [
      ["auth", "services/auth/main.ts", auth!, { AUTH_PORT: String(auth), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: uniqueSchema("trace_auth") }],
      // The project service exports only when it stops (a 10-minute batch delay): the shutdown flush test relies on it.
      ["project", "services/project/main.ts", project!, {
        PROJECT_PORT: String(project), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: uniqueSchema("trace_project"), OTEL_BSP_SCHEDULE_DELAY: "600000",
      }],
      ["logging", "services/logging/main.ts", logging!, { LOGGING_PORT: String(logging), MONGO_URL: mongoUrl, MONGO_DB: mongoDb }],
      ["analytics", "services/analytics/main.ts", analytics!, { ANALYTICS_PORT: String(analytics), MONGO_URL: mongoUrl, MONGO_DB: mongoDb }],
    ];
    for (const [name, , , env] of specs) procs.set(name, startMeshProcess(name as MeshProcessName, { ...common, ...env }));
    await Promise.all(specs.map(([name, , port]) => untilAccepting(procs.get(name)!.child, port, name, 60_000)));
    procs.set("gateway", startMeshProcess("gateway", {
      ...common, GATEWAY_PORT: String(gateway), GATEWAY_ADMIN_PORT: String(admin), REDIS_URL: redisUrl,
      UPSTREAM_AUTH: `127.0.0.1:${auth}`, UPSTREAM_PROJECT: `127.0.0.1:${project}`,
      UPSTREAM_LOGGING: `127.0.0.1:${logging}`, UPSTREAM_ANALYTICS: `127.0.0.1:${analytics}`,
    }));
    await untilAccepting(procs.get("gateway")!.child, gatewayPort, "gateway", 60_000);
    for (const deadline = Date.now() + 30_000; (await fetch(`${gw}/health`)).status !== 200;) {
      if (Date.now() > deadline) throw new Error("the mesh did not become healthy within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const registered = await rest("POST", "/api/v1/auth/register", { email, password, name: "Ada" });
    expect(registered.status).toBe(201);
    const login = await rest("POST", "/api/v1/auth/login", { email, password });
    token = (login.body as { accessToken: string }).accessToken;
    expect(token).toBeTruthy();
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...procs.values()].map((p) => stopProcess(p.child)));
    await receiver?.close();
  });

  async function rest(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${gw}${path}`, {
      method, headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status, requestId: res.headers.get("x-request-id") ?? "", traceId: res.headers.get("x-trace-id") ?? "",
      body: text ? JSON.parse(text) as unknown : undefined,
    };
  }

  /** Waits for the trace's spans to hold `expected`, then checks what every trace must: one id, request_id everywhere, no orphans. */
  async function trace(requestId: string, traceId: string, expected: (t: ReturnType<typeof traceOf>) => boolean) {
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    await receiver.waitFor((all) => expected(traceOf(all, traceId)), 15_000);
    const t = traceOf(receiver.spans(), traceId);
    // One trace per request: every span tagged with this request id is in this trace, and every span of it is tagged.
    expect(receiver.spans().filter((s) => s.attributes.request_id === requestId).every((s) => s.traceId === traceId)).toBe(true);
    expect(t.spans.map((s) => [s.name, s.attributes.request_id])).toEqual(t.spans.map((s) => [s.name, requestId]));
    expect(t.orphans().map((s) => s.name)).toEqual([]);
    const roots = t.spans.filter((s) => s.parentSpanId === "");
    expect(roots.map((s) => [t.service(s), s.kind])).toEqual([["gateway", "server"]]);
    return t;
  }

  const isServer = (rpc: string) => (s: ReceivedSpan) => s.kind === "server" && s.name === rpc;
  const isClient = (rpc: string) => (s: ReceivedSpan) => s.kind === "client" && s.name === rpc;
  const isDb = (system: string) => (s: ReceivedSpan) => s.kind === "client" && s.attributes["db.system.name"] === system;

  it("a REST request on PostgreSQL: gateway server span → filters → gRPC client span → auth server span → pg spans; the ids in the log lines and the stored request log", async () => {
    const r = await rest("GET", "/api/v1/auth/profile", undefined, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    const rpc = "mesh.auth.v1.AuthService/GetProfile";
    const t = await trace(r.requestId, r.traceId, (t) =>
      !!t.find("gateway", (s) => s.kind === "server") && !!t.find("auth", isServer(rpc)) && !!t.find("auth", isDb("postgresql")));
    const server = t.find("gateway", (s) => s.kind === "server")!;
    expect(server).toMatchObject({
      name: "GET /api/v1/auth/profile",
      attributes: { "http.request.method": "GET", "http.route": "/api/v1/auth/profile", "http.response.status_code": 200 },
      status: { code: "unset" },
      resource: { "service.name": "gateway", "service.version": MESH_VERSION, "deployment.environment.name": "test", "deployment.environment": "test" },
    });
    for (const filter of ["authn", "rate_limit"]) {
      expect(t.descends(t.find("gateway", (s) => s.name === filter)!, server), filter).toBe(true);
    }
    const redis = t.find("gateway", isDb("redis"));
    expect(redis && t.descends(redis, t.find("gateway", (s) => s.name === "rate_limit")!)).toBe(true);
    const client = t.find("gateway", isClient(rpc))!;
    expect(client.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "mesh.auth.v1.AuthService", "rpc.method": "GetProfile", "rpc.grpc.status_code": 0 });
    expect(t.descends(client, server)).toBe(true);
    const upstream = t.find("auth", isServer(rpc))!;
    expect(upstream.parentSpanId).toBe(client.spanId);
    expect(upstream.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.grpc.status_code": 0 });
    expect(upstream.resource).toMatchObject({ "service.name": "auth", "service.version": MESH_VERSION });
    const db = t.find("auth", isDb("postgresql"))!;
    expect(t.descends(db, upstream)).toBe(true);
    expect(db.attributes["db.query.text"]).toEqual(expect.stringMatching(/^(SELECT|WITH)\b/i));

    // The gateway's access line joins the trace.
    const access = procs.get("gateway")!.lines.find((l) => l.request_id === r.requestId && l.msg === "request");
    expect(access).toMatchObject({ request_id: r.requestId, trace_id: r.traceId, span_id: server.spanId });

    // The stored request log (shipped by the gateway to the logging service, read back from MongoDB) carries the same ids,
    // and reading it is a traced request of its own: gateway → logging → MongoDB.
    let stored: Awaited<ReturnType<typeof rest>> | undefined;
    await expect.poll(async () => (stored = await rest("GET", `/api/v1/logs/${r.requestId}`, undefined, { authorization: `Bearer ${token}` })).status,
      { timeout: 15_000, interval: 250 }).toBe(200);
    // GetLog answers the record itself (its HTTP rule's response_body is the log).
    expect(stored!.body).toMatchObject({ requestId: r.requestId, traceId: r.traceId, spanId: server.spanId });
    const read = await trace(stored!.requestId, stored!.traceId, (t) =>
      !!t.find("logging", isServer("mesh.logging.v1.LoggingService/GetLog")) && !!t.find("logging", isDb("mongodb")));
    const mongo = read.find("logging", isDb("mongodb"))!;
    expect(read.descends(mongo, read.find("logging", isServer("mesh.logging.v1.LoggingService/GetLog"))!)).toBe(true);
    expect(mongo.attributes).toMatchObject({ "db.system.name": "mongodb", "db.namespace": expect.any(String) });
  });

  it("a request the upstream refuses: error status on the spans of the failing path, and the service's log line carries the ids", async () => {
    const r = await rest("POST", "/api/v1/auth/login", { email, password: "not the password" });
    expect(r.status).toBe(401);
    const rpc = "mesh.auth.v1.AuthService/Login";
    const t = await trace(r.requestId, r.traceId, (t) => !!t.find("gateway", isClient(rpc)) && !!t.find("auth", isServer(rpc)));
    const client = t.find("gateway", isClient(rpc))!;
    const upstream = t.find("auth", isServer(rpc))!;
    expect(upstream.parentSpanId).toBe(client.spanId);
    for (const s of [client, upstream]) {
      expect(s.status.code, s.name).toBe("error");
      expect(s.attributes["rpc.grpc.status_code"], s.name).toBe(16); // UNAUTHENTICATED
    }
    expect(t.find("gateway", (s) => s.kind === "server")!.attributes["http.response.status_code"]).toBe(401);
    await expect.poll(() => procs.get("auth")!.lines.some((l) => l.request_id === r.requestId), { timeout: 5_000 }).toBe(true);
    for (const p of ["gateway", "auth"]) {
      const lines = procs.get(p)!.lines.filter((l) => l.request_id === r.requestId);
      expect(lines.length, p).toBeGreaterThan(0);
      expect(lines.every((l) => l.trace_id === r.traceId), p).toBe(true);
    }
  });

  it("a client that sent a sampled traceparent: its trace continues through the mesh, under its span", async () => {
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const r = await rest("GET", "/api/v1/auth/profile", undefined, {
      authorization: `Bearer ${token}`, traceparent: `00-${traceId}-b7ad6b7169203331-01`, "x-request-id": "client-chosen-id-1",
    });
    expect([r.status, r.requestId, r.traceId]).toEqual([200, "client-chosen-id-1", traceId]);
    await receiver.waitFor((all) => traceOf(all, traceId).spans.some((s) => s.resource["service.name"] === "auth"), 15_000);
    const t = traceOf(receiver.spans(), traceId);
    expect(t.find("gateway", (s) => s.kind === "server")!.parentSpanId).toBe("b7ad6b7169203331");
    expect(t.spans.every((s) => s.attributes.request_id === "client-chosen-id-1")).toBe(true);
  });

  it("a client that sent an unsampled traceparent: no process records its request (parent-based sampling at every hop)", async () => {
    const traceId = "5bf92f3577b34da6a3ce929d0e0e4736";
    const r = await rest("GET", "/api/v1/auth/profile", undefined, { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-00f067aa0ba902b7-00` });
    expect([r.status, r.traceId]).toEqual([200, traceId]);
    // A sampled request sent after it is exported by both processes; by then the unsampled one would have been too.
    const after = await rest("GET", "/api/v1/auth/profile", undefined, { authorization: `Bearer ${token}` });
    await trace(after.requestId, after.traceId, (t) => !!t.find("auth", isServer("mesh.auth.v1.AuthService/GetProfile")));
    expect(receiver.spans().filter((s) => s.traceId === traceId || s.attributes.request_id === r.requestId)).toEqual([]);
  });

  it("a native gRPC call through the gateway: the same trace shape, ids in the response metadata", async () => {
    const transport = createGrpcTransport({ address: `127.0.0.1:${gatewayPort}` });
    let header: Headers | undefined;
    try {
      await createClient(AuthService, transport).getProfile({}, { headers: { authorization: `Bearer ${token}` }, onHeader: (h) => (header = h) });
    } finally {
      transport.close();
    }
    const requestId = header?.get("x-request-id") ?? "";
    const rpc = "mesh.auth.v1.AuthService/GetProfile";
    const t = await trace(requestId, header?.get("x-trace-id") ?? "", (t) => !!t.find("auth", isServer(rpc)) && !!t.find("gateway", isClient(rpc)));
    expect(t.find("auth", isServer(rpc))!.parentSpanId).toBe(t.find("gateway", isClient(rpc))!.spanId);
    expect(new Set(t.spans.map(t.service))).toEqual(new Set(["gateway", "auth"]));
  });

  it("an upstream that is down: 503, the gateway's server and client spans marked ERROR", async () => {
    await stopProcess(procs.get("analytics")!.child);
    const r = await rest("GET", "/api/v1/analytics/summary", undefined, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(503);
    const t = await trace(r.requestId, r.traceId, (t) => !!t.find("gateway", (s) => s.kind === "server"));
    const server = t.find("gateway", (s) => s.kind === "server")!;
    expect(server.status.code).toBe("error");
    expect(server.attributes).toMatchObject({ "http.response.status_code": 503, "error.type": "UNAVAILABLE" });
  });

  it("flushes the spans still queued when a process stops (SIGTERM)", async () => {
    const r = await rest("GET", "/api/v1/projects?page=1&limit=5", undefined, { authorization: `Bearer ${token}` });
    expect(r.status).toBe(200);
    await receiver.waitFor((all) => traceOf(all, r.traceId).spans.some((s) => s.kind === "server"), 15_000);
    expect(traceOf(receiver.spans(), r.traceId).spans.filter((s) => s.resource["service.name"] === "project")).toEqual([]);
    const project = procs.get("project")!.child;
    const exited = new Promise((resolve) => project.once("exit", resolve));
    project.kill("SIGTERM");
    await exited;
    const t = traceOf(await receiver.waitFor((all) => traceOf(all, r.traceId).spans.some((s) => s.resource["service.name"] === "project"), 10_000), r.traceId);
    expect(t.find("project", isServer("mesh.project.v1.ProjectService/ListProjects"))).toBeDefined();
  });
});

import { randomUUID } from "node:crypto";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type RunningGateway } from "../../gateway/app.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { createLogger } from "../../lib/logger.js";
import { startAuthHarness, type AuthHarness } from "../support/auth-harness.js";
import { startLoggingHarness, type LoggingHarness } from "../support/logging-harness.js";
import { startProjectHarness, type ProjectHarness } from "../support/project-harness.js";
import { openGatewayState } from "../../gateway/state/open.js";
import type { GatewayState } from "../../gateway/state/port.js";
import { describeWithServer } from "../support/integration.js";
import { rejectionOf } from "../support/rejection.js";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  text: string;
}

/** Sends one HTTP/1.1 request to the gateway; the body is JSON-encoded unless given as a string. */
function send(port: number, method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    const req = http.request({ host: "127.0.0.1", port, method, path, headers: { ...(payload ? { "content-type": "application/json" } : {}), ...opts.headers } }, (res) => {
      let text = "";
      res.on("data", (c) => { text += c; });
      res.on("end", () => {
        let body: unknown;
        try { body = JSON.parse(text); } catch { body = undefined; }
        resolve({ status: res.statusCode!, headers: res.headers, body, text });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

// Real auth, project and logging services (embedded stores) on loopback ports, shared by the suites below.
let auth: AuthHarness;
let project: ProjectHarness;
let logging: LoggingHarness;
// Analytics is not started: its cluster points at a closed port.
const upstreams = () => ({ UPSTREAM_AUTH: auth.address, UPSTREAM_PROJECT: project.address, UPSTREAM_LOGGING: logging.address, UPSTREAM_ANALYTICS: "127.0.0.1:1" });

beforeAll(async () => {
  [auth, project, logging] = await Promise.all([startAuthHarness(), startProjectHarness(), startLoggingHarness()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([auth?.stop(), project?.stop(), logging?.stop()]);
});

/** Every cluster of the mesh, for inline configs; the UPSTREAM_* variables point them at the running services. */
const CLUSTERS_YAML = `clusters:
  - { name: auth, services: [mesh.auth.v1.AuthService], endpoints: ["127.0.0.1:1"] }
  - { name: project, services: [mesh.project.v1.ProjectService], endpoints: ["127.0.0.1:1"] }
  - { name: logging, services: [mesh.logging.v1.LoggingService], endpoints: ["127.0.0.1:1"] }
  - { name: analytics, services: [mesh.analytics.v1.AnalyticsService], endpoints: ["127.0.0.1:1"] }
`;

/** Starts a gateway on 127.0.0.1:0 with `yaml` (default: the built-in config) in front of the services. */
async function gatewayWith(yaml?: string, state?: GatewayState): Promise<RunningGateway> {
  const cfg = loadGatewayConfig({ ...(yaml ? { text: yaml } : {}), env: { GATEWAY_PORT: "0", GATEWAY_ADMIN_PORT: "0", ...upstreams() } });
  return startGateway({ ...cfg, listener: { ...cfg.listener, address: "127.0.0.1" } }, createLogger({ service: "gateway", level: "silent" }), state ? { state } : {});
}

/** Registers and logs in a fresh user through the gateway; answers the bearer header. */
async function signedInUser(port: number): Promise<{ authorization: string }> {
  const email = `gw-${randomUUID()}@example.com`;
  const password = "correct horse 42 staple";
  expect((await send(port, "POST", "/api/v1/auth/register", { body: { email, password, name: "U" } })).status).toBe(201);
  const login = await send(port, "POST", "/api/v1/auth/login", { body: { email, password } });
  return { authorization: `Bearer ${(login.body as { accessToken: string }).accessToken}` };
}

describe("gateway REST over real services", () => {
  let gateway: RunningGateway;
  let port: number;
  const email = `gw-${randomUUID()}@example.com`;
  const password = "correct horse 42 staple";
  let accessToken = "";

  beforeAll(async () => {
    gateway = await gatewayWith();
    port = gateway.port;
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
  });

  it("registers with 201 and the registration answer", async () => {
    const r = await send(port, "POST", "/api/v1/auth/register", { body: { email, password, name: "Gate Way" } });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ message: "Registration successful", user: { email, name: "Gate Way" } });
  });

  it("logs in, then reads the profile with the access token", async () => {
    const login = await send(port, "POST", "/api/v1/auth/login", { body: { email, password } });
    expect(login.status).toBe(200);
    accessToken = (login.body as { accessToken: string }).accessToken;
    expect(accessToken).toMatch(/^ey/);
    const profile = await send(port, "GET", "/api/v1/auth/profile", { headers: { authorization: `Bearer ${accessToken}` } });
    expect([profile.status, (profile.body as { email: string }).email], profile.text).toEqual([200, email]);
  });

  it("creates a project (201) and reads it back by id, int64 and timestamps in proto3 JSON", async () => {
    const headers = { authorization: `Bearer ${accessToken}` };
    const created = await send(port, "POST", "/api/v1/projects", { body: { name: "edge", description: "through the gateway" }, headers });
    expect(created.status).toBe(201);
    const id = (created.body as { id: string }).id;
    const got = await send(port, "GET", `/api/v1/projects/${id}`, { headers });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id, name: "edge", description: "through the gateway" });
    expect((got.body as { createdAt: string }).createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("refuses a user route without a token with 401 UNAUTHORIZED, and never forwards client identity headers", async () => {
    const r = await send(port, "GET", "/api/v1/auth/profile", { headers: { "x-user-id": "someone-else", "x-user-roles": "admin" } });
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ error: "UNAUTHORIZED", statusCode: 401 });
  });

  it("answers a bad token with 401 and an unknown route with 404 NOT_FOUND, both in the envelope with the request id", async () => {
    const bad = await send(port, "GET", "/api/v1/auth/profile", { headers: { authorization: "Bearer not.a.jwt" } });
    expect([bad.status, (bad.body as { error: string }).error]).toEqual([401, "UNAUTHORIZED"]);
    const missing = await send(port, "GET", "/api/v1/nothing-here", { headers: { "x-request-id": "my-req-1" } });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: "NOT_FOUND", statusCode: 404, requestId: "my-req-1" });
    expect(missing.headers["x-request-id"]).toBe("my-req-1");
    expect(typeof (missing.body as { timestamp: string }).timestamp).toBe("string");
  });

  it("answers a wrong verb with 405 and Allow", async () => {
    const r = await send(port, "DELETE", "/api/v1/auth/login");
    expect([r.status, r.headers.allow, (r.body as { error: string }).error]).toEqual([405, "POST", "METHOD_NOT_ALLOWED"]);
  });

  it("replaces a malformed x-request-id with a generated one", async () => {
    const r = await send(port, "GET", "/api/v1/nothing", { headers: { "x-request-id": "bad id with spaces" } });
    expect(r.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect((r.body as { requestId: string }).requestId).toBe(r.headers["x-request-id"]);
  });

  it("answers unknown JSON fields, malformed JSON and too-deep JSON with 400 VALIDATION_ERROR naming the problem", async () => {
    const unknown = await send(port, "POST", "/api/v1/auth/login", { body: { email, password, remember: true } });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain("remember");
    const malformed = await send(port, "POST", "/api/v1/auth/login", { body: "{\"email\": " });
    expect([malformed.status, (malformed.body as { message: string }).message]).toEqual([400, expect.stringContaining("malformed JSON")]);
    const deep = await send(port, "POST", "/api/v1/auth/login", { body: `${"[".repeat(100)}${"]".repeat(100)}` });
    expect([deep.status, (deep.body as { message: string }).message]).toEqual([400, expect.stringContaining("deeper than")]);
  });

  it("refuses a body over the limit with 413 before reaching the service", async () => {
    const r = await send(port, "POST", "/api/v1/auth/login", { body: JSON.stringify({ email: "x".repeat(2 * 1024 * 1024), password }) });
    expect([r.status, (r.body as { error: string }).error]).toEqual([413, "PAYLOAD_TOO_LARGE"]);
  });

  it("refuses an encoded dot segment that would reach another route with 400", async () => {
    const r = await send(port, "GET", "/api/v1/projects/x%2F..%2F..%2Fauth%2Fprofile", { headers: { authorization: `Bearer ${accessToken}` } });
    expect([r.status, (r.body as { error: string }).error]).toEqual([400, "VALIDATION_ERROR"]);
  });

  it("keeps the upstream's field violations in the envelope's details", async () => {
    const r = await send(port, "POST", "/api/v1/auth/register", { body: { email: "not-an-email", password: "x", name: "" } });
    expect(r.status).toBe(400);
    const details = (r.body as { details: { "@type": string; fieldViolations?: { field: string }[] }[] }).details;
    expect(details[0]?.["@type"]).toBe("type.googleapis.com/google.rpc.BadRequest");
    expect(details[0]?.fieldViolations?.map((v) => v.field)).toEqual(expect.arrayContaining(["email"]));
  });

  it("answers a CORS preflight from an allowed origin itself and exposes the gateway's headers to it", async () => {
    const origin = "http://localhost:5173";
    const pre = await send(port, "OPTIONS", "/api/v1/projects", { headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" } });
    expect([pre.status, pre.headers["access-control-allow-origin"], pre.headers["access-control-allow-headers"]]).toEqual([204, origin, "authorization, content-type"]);
    const actual = await send(port, "GET", "/api/v1/nothing", { headers: { origin } });
    expect(actual.headers["access-control-expose-headers"]).toEqual(expect.stringContaining("X-RateLimit-Remaining"));
    const evil = await send(port, "OPTIONS", "/api/v1/projects", { headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    expect([evil.status, evil.headers["access-control-allow-origin"]]).toEqual([403, undefined]);
  });

  it("reports every service's health at /health: 503 degraded while analytics is down, with latencies", async () => {
    const r = await send(port, "GET", "/health");
    expect(r.status).toBe(503);
    const body = r.body as { status: string; service: string; uptime: number; services: { name: string; status: string; latency: number }[] };
    expect([body.status, body.service, typeof body.uptime]).toEqual(["degraded", "gateway", "number"]);
    expect(Object.fromEntries(body.services.map((x) => [x.name, x.status]))).toEqual({ auth: "ok", project: "ok", logging: "ok", analytics: "down" });
    expect(body.services.every((x) => typeof x.latency === "number")).toBe(true);
  });

  it("serves /ready and Prometheus /stats on the admin port, counting requests by route template", async () => {
    expect((await send(gateway.adminPort, "GET", "/ready")).status).toBe(200);
    await send(port, "GET", "/api/v1/projects/does-not-exist", { headers: { authorization: `Bearer ${accessToken}` } });
    const stats = await send(gateway.adminPort, "GET", "/stats");
    expect(stats.status).toBe(200);
    expect(stats.text).toMatch(/mesh_gateway_requests_total\{route="\/api\/v1\/projects\/\{id\}",method="GET",status="404"\} [1-9]/);
    expect(stats.text).not.toContain("does-not-exist");
  });

  it("serves its OpenAPI 3.1 document and Swagger UI", async () => {
    const doc = await send(port, "GET", "/openapi.json");
    expect([doc.status, (doc.body as { openapi: string }).openapi]).toEqual([200, "3.1.0"]);
    expect(Object.keys((doc.body as { paths: object }).paths)).toEqual(expect.arrayContaining(["/api/v1/auth/login", "/api/v1/projects/{id}", "/api/v1/logs:tail"]));
    const ui = await send(port, "GET", "/api-docs");
    expect([ui.status, ui.headers["content-type"]?.startsWith("text/html"), ui.text.includes("swagger")]).toEqual([200, true, true]);
  });

  it("ships an access record of each request to the logging service, with route, status, caller and request id", async () => {
    const requestId = `acc-${randomUUID()}`;
    await send(port, "GET", "/api/v1/projects/nope", { headers: { authorization: `Bearer ${accessToken}`, "x-request-id": requestId } });
    const admin = { "x-user-id": "ops", "x-user-roles": "admin" };
    let found: { route: string; statusCode: number; userId: string; errorCode: string; upstreamService: string } | undefined;
    for (let i = 0; i < 50 && !found; i++) {
      found = (await logging.client.getLog({ requestId }, { headers: admin }).catch(() => undefined))?.log as typeof found;
      if (!found) await new Promise((r) => setTimeout(r, 100));
    }
    expect(found).toMatchObject({ route: "/api/v1/projects/{id}", statusCode: 404, errorCode: "NOT_FOUND", upstreamService: "project" });
    expect(found!.userId).not.toBe("");
  });

  it("answers 503 UNAVAILABLE when the owning service is not running", async () => {
    const r = await send(port, "GET", "/api/v1/alerts/rules", { headers: { authorization: `Bearer ${accessToken}` } });
    expect([r.status, (r.body as { error: string }).error]).toEqual([503, "UNAVAILABLE"]);
  });

  it("lets a client's grpc-timeout shorten the upstream deadline (504 TIMEOUT), never lengthen it", async () => {
    const headers = { authorization: `Bearer ${accessToken}` };
    const tiny = await send(port, "GET", "/api/v1/projects", { headers: { ...headers, "grpc-timeout": "1n" } });
    expect([tiny.status, (tiny.body as { error: string }).error]).toEqual([504, "TIMEOUT"]);
    expect((await send(port, "GET", "/api/v1/projects", { headers: { ...headers, "grpc-timeout": "99H" } })).status).toBe(200);
  });

  it("shows each cluster's endpoints with their health on the admin /clusters", async () => {
    type View = { clusters: { name: string; health: string; endpoints: { address: string; health: string; probe: { status: string } }[] }[] };
    const byName = new Map(((await send(gateway.adminPort, "GET", "/clusters")).body as View).clusters.map((c) => [c.name, c]));
    expect(byName.get("auth")).toMatchObject({ health: "ok", endpoints: [{ address: auth.address, health: "healthy", probe: { status: "ok" } }] });
    expect(byName.get("analytics")).toMatchObject({ health: "down", endpoints: [{ address: "127.0.0.1:1", health: "unhealthy", probe: { status: "down" } }] });
  });

  it("forwards native gRPC and Connect calls through the same authentication, and refuses internal methods", async () => {
    const grpcTransport = createGrpcTransport({ address: `127.0.0.1:${port}` });
    const connectTransport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" });
    try {
      for (const transport of [grpcTransport, connectTransport]) {
        const authClient = createClient(AuthService, transport);
        const login = await authClient.login({ email, password });
        expect(login.accessToken).toMatch(/^ey/);
        const projects = createClient(ProjectService, transport);
        const listed = await projects.listProjects({}, { headers: { authorization: `Bearer ${login.accessToken}` } });
        expect(listed.projects.length).toBeGreaterThan(0);
        expect((await rejectionOf(projects.listProjects({}))).code).toBe(Code.Unauthenticated);
        expect((await rejectionOf(projects.verifyApiKey({ keyHash: "0".repeat(64) }))).code).toBe(Code.PermissionDenied);
      }
    } finally {
      grpcTransport.close();
    }
  });

  it("counts cache results and upstream errors in /stats", async () => {
    await send(port, "GET", "/.well-known/jwks.json");
    await send(port, "GET", "/.well-known/jwks.json");
    await send(port, "GET", "/api/v1/alerts/rules", { headers: { authorization: `Bearer ${accessToken}` } });
    const stats = (await send(gateway.adminPort, "GET", "/stats")).text;
    expect(stats).toMatch(/mesh_gateway_cache_total\{result="hit"\} [1-9]/);
    expect(stats).toMatch(/mesh_gateway_upstream_errors_total\{cluster="analytics",code="unavailable"\} [1-9]/);
  });
});

/** The filters suite on one kind of gateway state: `openState` gives each gateway of the suite its own state (undefined: embedded). */
function filtersSuite(stateName: string, openState: () => Promise<GatewayState | undefined>) {
describe(`gateway filters: API keys, rate limits, response cache (${stateName} state)`, () => {
  const states: GatewayState[] = [];
  /** A gateway of this suite, on state of the suite's kind. */
  const gatewayOf = async (yamlText: string) => {
    const state = await openState();
    if (state) states.push(state);
    return gatewayWith(yamlText, state);
  };
  afterAll(async () => {
    await Promise.all(states.map((st) => st.close()));
  });
  let gateway: RunningGateway;
  let port: number;
  const yaml = `
${CLUSTERS_YAML}filters:
  - requestId: {}
  - authn: { jwksCluster: auth }
  - apiKey: { positiveCacheTtl: 60s, negativeCacheTtl: 60s }
  - rateLimit: { anonymous: { limit: 1000 }, user: { limit: 1000 } }
  - cache: { defaultTtl: 30s }
  - router: {}
`;
  beforeAll(async () => {
    gateway = await gatewayOf(yaml);
    port = gateway.port;
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
  });

  it("accepts an API key on a user-or-key route, scoping to its project, and refuses a wrong one", async () => {
    const user = await signedInUser(port);
    const p = await send(port, "POST", "/api/v1/projects", { body: { name: "keys" }, headers: user });
    const projectId = (p.body as { id: string }).id;
    const k = await send(port, "POST", `/api/v1/projects/${projectId}/keys`, { body: { name: "ci" }, headers: user });
    expect(k.status).toBe(201);
    const key = (k.body as { key: string }).key;
    const requestId = randomUUID();
    const ingest = await send(port, "POST", "/api/v1/logs", {
      body: { requestId, method: "GET", path: "/x", statusCode: 200, latency: 3, ip: "10.0.0.1", timestamp: new Date().toISOString() },
      headers: { "x-api-key": key },
    });
    expect([ingest.status, ingest.text]).toEqual([201, expect.stringContaining("Log ingested")]);
    const read = await send(port, "GET", `/api/v1/logs/${requestId}`, { headers: { "x-api-key": key } });
    expect([read.status, (read.body as { projectId: string }).projectId]).toEqual([200, projectId]);
    const wrong = await send(port, "GET", `/api/v1/logs/${requestId}`, { headers: { "x-api-key": "gw_not-a-real-key" } });
    expect([wrong.status, (wrong.body as { error: string }).error]).toEqual([401, "UNAUTHORIZED"]);
  });

  it("streams TailLogs as SSE to an EventSource-style client (head at once, one data event per record) and as NDJSON otherwise", async () => {
    const user = await signedInUser(port);
    const projectId = ((await send(port, "POST", "/api/v1/projects", { body: { name: "tail" }, headers: user })).body as { id: string }).id;
    const key = ((await send(port, "POST", `/api/v1/projects/${projectId}/keys`, { body: { name: "t" }, headers: user })).body as { key: string }).key;
    for (const [accept, contentType, parse, credentials] of [
      ["text/event-stream", "text/event-stream", (t: string) => /^data: (.*)$/m.exec(t)?.[1], "header"],
      ["text/event-stream", "text/event-stream", (t: string) => /^data: (.*)$/m.exec(t)?.[1], "query"], // EventSource sends no headers
      ["application/json", "application/x-ndjson", (t: string) => t.split("\n").find((l) => l.startsWith("{")), "header"],
    ] as const) {
      const controller = new AbortController();
      const opened = Date.now();
      const path = credentials === "query" ? `/api/v1/logs:tail?api_key=${encodeURIComponent(key)}` : "/api/v1/logs:tail";
      const auth = credentials === "query" ? {} : { "x-api-key": key };
      const { headers, body } = await new Promise<{ headers: http.IncomingHttpHeaders; body: AsyncIterable<Buffer> }>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path, headers: { ...auth, accept }, signal: controller.signal },
          (res) => resolve({ headers: res.headers, body: res })).on("error", reject);
      });
      expect([headers["content-type"]?.startsWith(contentType), Date.now() - opened < 1_000]).toEqual([true, true]);
      const requestId = randomUUID();
      await send(port, "POST", "/api/v1/logs", {
        body: { requestId, method: "GET", path: "/t", statusCode: 200, latency: 1, ip: "10.0.0.2", timestamp: new Date().toISOString() },
        headers: { "x-api-key": key },
      });
      let text = "";
      for await (const chunk of body) {
        text += chunk.toString();
        if (parse(text)) break;
      }
      controller.abort();
      expect((JSON.parse(parse(text)!) as { requestId: string }).requestId).toBe(requestId); // response_body: "log"
    }
  });

  it("ends an open SSE stream with an UNAVAILABLE error event when the gateway stops, so the client reconnects elsewhere", async () => {
    const own = await gatewayOf(yaml);
    const user = await signedInUser(own.port);
    const projectId = ((await send(own.port, "POST", "/api/v1/projects", { body: { name: "drain" }, headers: user })).body as { id: string }).id;
    const key = ((await send(own.port, "POST", `/api/v1/projects/${projectId}/keys`, { body: { name: "d" }, headers: user })).body as { key: string }).key;
    const body = await new Promise<AsyncIterable<Buffer>>((resolve, reject) => {
      http.get({ host: "127.0.0.1", port: own.port, path: "/api/v1/logs:tail", headers: { "x-api-key": key, accept: "text/event-stream" } },
        (res) => resolve(res)).on("error", reject);
    });
    const stopped = own.stop();
    let text = "";
    for await (const chunk of body) text += chunk.toString();
    await stopped;
    expect(text).toMatch(/^event: error\ndata: .*"error":"UNAVAILABLE"/m);
  });

  it("refuses a revoked key within a second although its verdict was cached", async () => {
    const user = await signedInUser(port);
    const projectId = ((await send(port, "POST", "/api/v1/projects", { body: { name: "revoke" }, headers: user })).body as { id: string }).id;
    const created = (await send(port, "POST", `/api/v1/projects/${projectId}/keys`, { body: { name: "soon gone" }, headers: user })).body as { id: string; key: string };
    const ask = () => send(port, "GET", "/api/v1/logs?limit=1", { headers: { "x-api-key": created.key } });
    expect((await ask()).status).toBe(200); // verdict cached for 60 s from here
    expect((await send(port, "DELETE", `/api/v1/keys/${created.id}`, { headers: user })).status).toBe(200);
    const revokedAt = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 3_000) status = (await ask()).status;
    expect([status, Date.now() - revokedAt < 1_000]).toEqual([401, true]);
  });

  it("refuses an access token within a second of its logout, although the gateway had verified and cached it", async () => {
    const email = `gw-${randomUUID()}@example.com`;
    const password = "correct horse 42 staple";
    await send(port, "POST", "/api/v1/auth/register", { body: { email, password, name: "L" } });
    const tokens = (await send(port, "POST", "/api/v1/auth/login", { body: { email, password } })).body as { accessToken: string; refreshToken: string };
    const headers = { authorization: `Bearer ${tokens.accessToken}` };
    expect((await send(port, "GET", "/api/v1/projects", { headers })).status).toBe(200);
    expect((await send(port, "POST", "/api/v1/auth/logout", { body: { refreshToken: tokens.refreshToken }, headers })).status).toBe(200);
    const at = Date.now();
    let r = await send(port, "GET", "/api/v1/projects", { headers });
    while (r.status === 200 && Date.now() - at < 3_000) r = await send(port, "GET", "/api/v1/projects", { headers });
    expect([r.status, Date.now() - at < 1_000, JSON.stringify((r.body as { details: unknown }).details)]).toEqual([401, true, expect.stringContaining("TOKEN_REVOKED")]);
  });

  it("applies a project's route config (rate limit, cache TTL) to that project's API-key traffic only, live", async () => {
    const owner = await signedInUser(port);
    const mine = ((await send(port, "POST", "/api/v1/projects", { body: { name: "rc" }, headers: owner })).body as { id: string }).id;
    const other = ((await send(port, "POST", "/api/v1/projects", { body: { name: "rc-other" }, headers: owner })).body as { id: string }).id;
    const keyOf = async (projectId: string) => ((await send(port, "POST", `/api/v1/projects/${projectId}/keys`, { body: { name: "k" }, headers: owner })).body as { key: string }).key;
    const [myKey, otherKey] = [await keyOf(mine), await keyOf(other)];
    const route = await send(port, "POST", `/api/v1/projects/${mine}/routes`, {
      body: { method: "GET", path: "/api/v1/logs", service: "logging", rateLimit: 2, cacheTtlSeconds: 30 }, headers: owner,
    });
    expect(route.status).toBe(201);
    const ask = (key: string) => send(port, "GET", "/api/v1/logs", { headers: { "x-api-key": key } });
    let first = await ask(myKey);
    for (const at = Date.now(); first.headers["x-ratelimit-limit"] !== "2" && Date.now() - at < 3_000;) first = await ask(myKey);
    expect([first.headers["x-ratelimit-limit"], first.headers["x-cache"]]).toEqual(["2", "MISS"]);
    expect((await ask(myKey)).headers["x-cache"]).toBe("HIT");
    const third = await ask(myKey);
    expect(third.status).toBe(429);
    const theirs = await ask(otherKey);
    expect([theirs.status, theirs.headers["x-ratelimit-limit"]]).toEqual([200, "1000"]);
    const byUser = await send(port, "GET", "/api/v1/logs", { headers: owner });
    expect([byUser.status, byUser.headers["x-ratelimit-limit"]]).toEqual([200, "1000"]);
  });

  it("limits anonymous clients by IP with X-RateLimit headers and answers 429 with Retry-After", async () => {
    const strict = await gatewayOf(yaml.replace("anonymous: { limit: 1000 }", "anonymous: { limit: 3, period: 60s }"));
    try {
      const replies = [];
      for (let i = 0; i < 4; i++) replies.push(await send(strict.port, "GET", "/.well-known/jwks.json"));
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429]);
      expect(replies.map((r) => r.headers["x-ratelimit-remaining"])).toEqual(["2", "1", "0", "0"]);
      expect(replies[0]!.headers["x-ratelimit-limit"]).toBe("3");
      const limited = replies[3]!;
      expect((limited.body as { error: string }).error).toBe("TOO_MANY_REQUESTS");
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      expect(Number(limited.headers["x-ratelimit-reset"])).toBeGreaterThan(0);
    } finally {
      await strict.stop();
    }
  });

  it("caches a caller's GET (MISS then HIT), never serves it to another caller, and drops it when the caller writes", async () => {
    const alice = await signedInUser(port);
    const bob = await signedInUser(port);
    const id = ((await send(port, "POST", "/api/v1/projects", { body: { name: "v1" }, headers: alice })).body as { id: string }).id;
    const get = (who: { authorization: string }) => send(port, "GET", `/api/v1/projects/${id}`, { headers: who });
    const first = await get(alice);
    const second = await get(alice);
    expect([first.headers["x-cache"], second.headers["x-cache"], (second.body as { name: string }).name]).toEqual(["MISS", "HIT", "v1"]);
    const other = await get(bob);
    expect([other.status, other.headers["x-cache"]]).toEqual([404, "MISS"]);
    expect((await send(port, "PATCH", `/api/v1/projects/${id}`, { body: { name: "v2" }, headers: alice })).status).toBe(200);
    const after = await get(alice);
    expect([after.headers["x-cache"], (after.body as { name: string }).name]).toEqual(["MISS", "v2"]);
    const bypass = await send(port, "GET", `/api/v1/projects/${id}`, { headers: { ...alice, "cache-control": "no-cache" } });
    expect(bypass.headers["x-cache"]).toBe("BYPASS");
  });
});
}

filtersSuite("embedded", async () => undefined);
describeWithServer("TEST_REDIS_URL", "gateway filters on Redis", (url) => {
  // A key prefix per gateway: suites and runs never see each other's buckets, verdicts or cache entries.
  filtersSuite("Redis", () => openGatewayState({ url, keyPrefix: `mesh:test:${randomUUID()}:` }));
});

describeWithServer("TEST_REDIS_URL", "gateway rate limits shared through Redis", (url) => {
  it("allows exactly the limit across two gateways for a concurrent burst", async () => {
    const yaml = `
${CLUSTERS_YAML}filters:
  - requestId: {}
  - rateLimit: { anonymous: { limit: 20, period: 60s } }
  - router: {}
`;
    const prefix = `mesh:test:${randomUUID()}:`;
    const states = await Promise.all([0, 1].map(() => openGatewayState({ url, keyPrefix: prefix })));
    const gateways = await Promise.all(states.map((s) => gatewayWith(yaml, s)));
    try {
      const burst = await Promise.all(Array.from({ length: 60 }, (_, i) =>
        send(gateways[i % 2]!.port, "GET", "/.well-known/jwks.json")));
      expect(burst.filter((r) => r.status !== 429).length).toBe(20);
      expect(burst.filter((r) => r.status === 429).length).toBe(40);
    } finally {
      await Promise.all(gateways.map((g) => g.stop()));
      await Promise.all(states.map((s) => s.close()));
    }
  });
});

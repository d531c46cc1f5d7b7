import { randomUUID } from "node:crypto";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type RunningGateway } from "../../gateway/app.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { createLogger } from "../../lib/logger.js";
import { startAuthHarness, type AuthHarness } from "../support/auth-harness.js";
import { startProjectHarness, type ProjectHarness } from "../support/project-harness.js";

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

// The gateway in front of real auth and project services (embedded stores), on loopback ports.
describe("gateway REST over real services", () => {
  let auth: AuthHarness;
  let project: ProjectHarness;
  let gateway: RunningGateway;
  let port: number;
  const email = `gw-${randomUUID()}@example.com`;
  const password = "correct horse 42 staple";
  let accessToken = "";

  beforeAll(async () => {
    [auth, project] = await Promise.all([startAuthHarness(), startProjectHarness()]);
    const cfg = loadGatewayConfig({
      env: { GATEWAY_PORT: "0", UPSTREAM_AUTH: auth.address, UPSTREAM_PROJECT: project.address },
    });
    gateway = await startGateway({ ...cfg, listener: { ...cfg.listener, address: "127.0.0.1" } }, createLogger({ service: "gateway", level: "silent" }));
    port = gateway.port;
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await Promise.all([auth?.stop(), project?.stop()]);
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

  it("answers 503 UNAVAILABLE when the owning service is not running", async () => {
    const r = await send(port, "GET", "/api/v1/analytics/summary", { headers: { authorization: `Bearer ${accessToken}` } });
    expect([r.status, (r.body as { error: string }).error]).toEqual([503, "UNAVAILABLE"]);
  });
});

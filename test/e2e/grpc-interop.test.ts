import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type * as grpc from "@grpc/grpc-js";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { identityHeaders } from "../../lib/identity.js";
import { startGatewayWithServices, type GatewayWithServices } from "../support/gateway-with-services.js";
import { badRequestOf, protoClient, serverStream, unary, type CallOptions, type ServerStream } from "../support/proto-loader-client.js";
import { useGlobalTracing } from "../support/tracing.js";

// Interop with the reference Node gRPC stack: @grpc/grpc-js clients built by @grpc/proto-loader
// from proto/ alone, against every service directly and through the gateway (embedded stores).
useGlobalTracing(); // a real tracer provider, as NodeSDK registers in production: the gateway answers x-trace-id

let mesh: GatewayWithServices;
let gw: string;
const clients: grpc.Client[] = [];

beforeAll(async () => {
  mesh = await startGatewayWithServices();
  gw = mesh.gatewayAddress;
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await mesh?.stop();
});

const client = (service: Parameters<typeof protoClient>[0], address: string) => {
  const c = protoClient(service, address);
  clients.push(c);
  return c;
};
const PASSWORD = "interop horse 42";
const newEmail = () => `interop-${randomUUID()}@example.com`;
const admin: CallOptions = { metadata: identityHeaders({ userId: "interop-admin", roles: ["user", "admin"] }) };
/** A grpc-js ServiceError's code (rejections are ServiceErrors). */
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("the call succeeded"); }, (e: grpc.ServiceError) => e);

/** Registers and logs in a fresh user at `address` (auth's or the gateway's); answers its bearer metadata. */
async function signIn(address: string): Promise<Record<string, string>> {
  const email = newEmail();
  await unary(client("auth", address), "Register", { email, password: PASSWORD, name: "Interop" });
  const login = await unary<{ accessToken: string }>(client("auth", address), "Login", { email, password: PASSWORD });
  return { authorization: `Bearer ${login.message.accessToken}` };
}

/**
 * Ingests a fresh record every 200 ms until `tail` delivers one of them (a tail replays nothing stored
 * before it opened, and its headers come with its first message, so there is no other sign it is open).
 */
async function ingestUntilTailed<T extends { log: { requestId: string } }>(tail: ServerStream<T>,
  ingest: (log: object) => Promise<unknown>): Promise<T> {
  const sent = new Set<string>();
  let tailed = false;
  const arrived = tail.next((m) => sent.has(m.log.requestId)).finally(() => { tailed = true; });
  while (!tailed) {
    const requestId = `interop-${randomUUID()}`;
    sent.add(requestId);
    await ingest({ requestId, method: "GET", path: "/interop", statusCode: 200, latency: 1.5 });
    await Promise.race([arrived.catch(() => undefined), sleep(200)]);
  }
  return arrived;
}

describe("grpc-js + proto-loader, each service directly", () => {
  it("auth: registers and logs in (unary), then reads the profile with the bearer token in metadata", async () => {
    const bearer = await signIn(mesh.auth.address);
    const profile = await unary<{ user: { email: string } }>(client("auth", mesh.auth.address), "GetProfile", {}, { metadata: bearer });
    expect(profile.message.user.email).toMatch(/^interop-.*@example\.com$/);
  });

  it("auth: answers a bad email and password with INVALID_ARGUMENT and a google.rpc.BadRequest in grpc-status-details-bin", async () => {
    const err = await failure(unary(client("auth", mesh.auth.address), "Register", { email: "not-an-email", password: "short", name: "X" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(badRequestOf(err)?.fieldViolations.map((v) => v.field)).toEqual(["email", "password"]);
  });

  it("auth: ends a slow call (argon2 login) past a tiny deadline with DEADLINE_EXCEEDED", async () => {
    const err = await failure(unary(client("auth", mesh.auth.address), "Login", { email: newEmail(), password: PASSWORD }, { deadlineMs: 2 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });

  it("project: creates and reads a project as the caller named in x-user-id metadata", async () => {
    const owner = { metadata: identityHeaders({ userId: `u-${randomUUID()}` }) };
    const created = await unary<{ project: { id: string } }>(client("project", mesh.project.address), "CreateProject", { name: "interop" }, owner);
    const got = await unary<{ project: { name: string } }>(client("project", mesh.project.address), "GetProject", { id: created.message.project.id }, owner);
    expect(got.message.project.name).toBe("interop");
    const stranger = { metadata: identityHeaders({ userId: `u-${randomUUID()}` }) };
    expect((await failure(unary(client("project", mesh.project.address), "GetProject", { id: created.message.project.id }, stranger))).code)
      .toBe(Code.NotFound);
  });

  it("logging: TailLogs (server streaming) delivers a record ingested after it opened, then ends at its deadline with DEADLINE_EXCEEDED", async () => {
    const logging = client("logging", mesh.analytics.logging.address);
    const tail = serverStream<{ log: { requestId: string } }>(logging, "TailLogs", {}, { ...admin, deadlineMs: 3_000 });
    const ingested = await ingestUntilTailed(tail, (log) => unary(logging, "IngestLog", { log }, admin));
    expect(ingested.log.requestId).toMatch(/^interop-/);
    expect((await tail.ended).code).toBe(Code.DeadlineExceeded);
  });

  it("analytics: answers GetSummary and holds WatchAlertEvents open until its deadline (DEADLINE_EXCEEDED)", async () => {
    const summary = await unary<{ totalRequests: string }>(client("analytics", mesh.analytics.analytics.address), "GetSummary", {}, admin);
    expect(summary.message).toHaveProperty("totalRequests");
    const watch = serverStream(client("analytics", mesh.analytics.analytics.address), "WatchAlertEvents", {}, { ...admin, deadlineMs: 300 });
    expect((await watch.ended).code).toBe(Code.DeadlineExceeded);
  });
});

describe("grpc-js + proto-loader through the gateway", () => {
  it("echoes the client's x-request-id in the response headers with an x-trace-id", async () => {
    const requestId = `interop-${randomUUID()}`;
    const reply = await unary(client("auth", gw), "Register", { email: newEmail(), password: PASSWORD, name: "Interop" },
      { metadata: { "x-request-id": requestId } });
    expect(reply.headers.get("x-request-id")).toEqual([requestId]);
    expect(String(reply.headers.get("x-trace-id")[0])).toMatch(/^[0-9a-f]{32}$/);
  });

  it("relays INVALID_ARGUMENT with its google.rpc.BadRequest, the request id in the trailers too", async () => {
    const err = await failure(unary(client("auth", gw), "Register", { email: "not-an-email", password: "short", name: "X" },
      { metadata: { "x-request-id": "interop-bad-register" } }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(badRequestOf(err)?.fieldViolations.map((v) => v.field)).toEqual(["email", "password"]);
    expect(err.metadata.get("x-request-id")).toEqual(["interop-bad-register"]);
  });

  it("refuses a user method without a bearer token with UNAUTHENTICATED and answers it with one", async () => {
    const anonymous = await failure(unary(client("auth", gw), "GetProfile", {}));
    expect(anonymous.code).toBe(Code.Unauthenticated);
    const forged = await failure(unary(client("auth", gw), "GetProfile", {}, { metadata: { authorization: "Bearer not.a.jwt" } }));
    expect(forged.code).toBe(Code.Unauthenticated);
    const bearer = await signIn(gw);
    const profile = await unary<{ user: { email: string } }>(client("auth", gw), "GetProfile", {}, { metadata: bearer });
    expect(profile.message.user.email).toMatch(/^interop-/);
  });

  it("refuses an API-key method without a key or with an unknown one (UNAUTHENTICATED) and answers it with a project's key", async () => {
    const bearer = await signIn(gw);
    const created = await unary<{ project: { id: string } }>(client("project", gw), "CreateProject", { name: `keys-${randomUUID()}` }, { metadata: bearer });
    const key = await unary<{ key: string }>(client("project", gw), "CreateApiKey", { projectId: created.message.project.id, name: "ci" }, { metadata: bearer });
    expect((await failure(unary(client("analytics", gw), "GetSummary", {}))).code).toBe(Code.Unauthenticated);
    expect((await failure(unary(client("analytics", gw), "GetSummary", {}, { metadata: { "x-api-key": `gw_${"x".repeat(43)}` } }))).code)
      .toBe(Code.Unauthenticated);
    const summary = await unary(client("analytics", gw), "GetSummary", {}, { metadata: { "x-api-key": key.message.key } });
    expect(summary.message).toHaveProperty("totalRequests");
    // Identity metadata from clients never passes: an admin claim beside the key reads nothing outside its project.
    const other = { requestId: `interop-${randomUUID()}`, projectId: `other-${randomUUID()}`, method: "GET", path: "/x", statusCode: 200 };
    await unary(client("logging", mesh.analytics.logging.address), "IngestLog", { log: other }, admin);
    const logs = await unary<{ logs: unknown[] }>(client("logging", gw), "QueryLogs", { projectId: other.projectId },
      { metadata: { "x-api-key": key.message.key, "x-user-id": "interop-admin", "x-user-roles": "user,admin" } });
    expect(logs.message.logs).toEqual([]);
    expect((await unary<{ logs: unknown[] }>(client("logging", mesh.analytics.logging.address), "QueryLogs", { projectId: other.projectId }, admin))
      .message.logs).toHaveLength(1);
  });

  it("refuses an internal method (VerifyApiKey) with PERMISSION_DENIED", async () => {
    const bearer = await signIn(gw);
    expect((await failure(unary(client("project", gw), "VerifyApiKey", { keyHash: "00" }, { metadata: bearer }))).code).toBe(Code.PermissionDenied);
  });

  it("streams TailLogs with an API key: a record ingested after it opened arrives, then DEADLINE_EXCEEDED at the client's deadline", async () => {
    const bearer = await signIn(gw);
    const created = await unary<{ project: { id: string } }>(client("project", gw), "CreateProject", { name: `tail-${randomUUID()}` }, { metadata: bearer });
    const { message: { key } } = await unary<{ key: string }>(client("project", gw), "CreateApiKey", { projectId: created.message.project.id, name: "tail" }, { metadata: bearer });
    const tail = serverStream<{ log: { requestId: string; projectId: string } }>(client("logging", gw), "TailLogs", {},
      { metadata: { "x-api-key": key, "x-request-id": "interop-tail" }, deadlineMs: 4_000 });
    const got = await ingestUntilTailed(tail, (log) => unary(client("logging", gw), "IngestLog", { log }, { metadata: { "x-api-key": key } }));
    expect(got.log.projectId).toBe(created.message.project.id);
    expect((await tail.headers).get("x-request-id")).toEqual(["interop-tail"]); // sent with the first message
    expect((await tail.ended).code).toBe(Code.DeadlineExceeded);
  });

  it("streams WatchAlertEvents with a bearer token until the client's deadline (DEADLINE_EXCEEDED)", async () => {
    const bearer = await signIn(gw);
    const watch = serverStream(client("analytics", gw), "WatchAlertEvents", {}, { metadata: bearer, deadlineMs: 500 });
    expect((await watch.ended).code).toBe(Code.DeadlineExceeded);
  });

  it("ends a slow unary call past a tiny deadline with DEADLINE_EXCEEDED", async () => {
    const err = await failure(unary(client("auth", gw), "Login", { email: newEmail(), password: PASSWORD }, { deadlineMs: 2 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });
});

import { rm } from "node:fs/promises";
import { getOption, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { afterAll, beforeAll, expect, it } from "vitest";
import { http } from "../../gen/google/api/annotations_pb.js";
import { startGateway, type RunningGateway } from "../../gateway/app.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { createLogger } from "../../lib/logger.js";
import { createGrpcTransport, type GrpcTransport } from "../../lib/grpc/transport.js";
import { compileGreeter, startGreeter, type CompiledGreeter, type GreeterServer, type GreeterVariant } from "../support/python-greeter.js";
import { createReflectionClient } from "../support/reflection-client.js";
import { describeWithToolchain, findPython } from "../support/toolchains.js";
import { freePort } from "../support/processes.js";

// A Python gRPC server (test/fixtures/reflected-greeter) joins through a reflection cluster: the gateway
// learns its routes over server reflection, with no gen/ code and no restart.

interface Reply { status: number; body: Record<string, unknown> }

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeWithToolchain(findPython(), "gateway: a Python service joins through server reflection", (python) => {
  const compiled = {} as Record<GreeterVariant, CompiledGreeter>;
  const logs: Record<string, unknown>[] = [];
  let greeter: GreeterServer | undefined;
  let gateway: RunningGateway;
  let native: GrpcTransport;
  let upstreamPort: number;
  let signer: { privateKey: CryptoKey; jwk: JWK };

  const send = async (method: string, path: string, opts: { body?: unknown; token?: boolean } = {}): Promise<Reply> => {
    const headers: Record<string, string> = opts.body === undefined ? {} : { "content-type": "application/json" };
    if (opts.token) headers.authorization = `Bearer ${await token()}`;
    const res = await fetch(`http://127.0.0.1:${gateway.port}${path}`, { method, headers, ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }) });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  };
  const token = () => new SignJWT({ roles: ["user"] }).setProtectedHeader({ alg: "EdDSA", kid: "k1" })
    .setIssuer("mesh-auth").setAudience("mesh").setSubject("user-7").setJti(crypto.randomUUID()).setExpirationTime("5m").sign(signer.privateKey);
  const call = (service: DescService, name: string, input: Record<string, unknown>, headers: Record<string, string> = {}) =>
    native.unary(service.methods.find((m) => m.name === name) as DescMethodUnary, undefined, 5_000, headers, input);
  const restart = async (variant: GreeterVariant) => {
    await greeter?.stop();
    greeter = await startGreeter(python, compiled[variant], upstreamPort);
  };

  beforeAll(async () => {
    for (const v of ["base", "breaking", "extended"] as const) compiled[v] = await compileGreeter(python, v);
    const { privateKey, publicKey } = await generateKeyPair("EdDSA");
    signer = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: "k1", alg: "EdDSA" } };
    upstreamPort = await freePort();
    const cfg = loadGatewayConfig({ env: {}, text: `
listener: { address: 127.0.0.1, port: 0, adminPort: 0 }
clusters:
  - name: greeter
    services: [demo.greeter.v1.Greeter]
    endpoints: ["127.0.0.1:${upstreamPort}"]
    reflection: { refreshInterval: 0.3s }
filters:
  - requestId: {}
  - authn: { jwksUrl: "http://127.0.0.1:1/unused" }
  - router: {}
` });
    const logger = createLogger({ service: "gateway", level: "info", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
    // Started before its upstream: the schema is not loaded yet.
    gateway = await startGateway(cfg, logger, { jwks: async () => ({ keys: [signer.jwk] }) });
    native = createGrpcTransport({ address: `127.0.0.1:${gateway.port}` });
  }, 120_000);
  afterAll(async () => {
    native?.close();
    await gateway?.stop();
    await greeter?.stop();
    await Promise.all(Object.values(compiled).map((c) => rm(c.genDir, { recursive: true, force: true })));
  });

  it("starts while the upstream is down, and answers its requests 503 UNAVAILABLE saying why", async () => {
    expect(logs.some((l) => l.level === 40 && /server reflection of cluster greeter failed/.test(String(l.msg)))).toBe(true);
    const r = await send("GET", "/api/v1/greeter/Ada");
    expect([r.status, r.body.error]).toEqual([503, "UNAVAILABLE"]);
    expect(r.body.message).toMatch(/routes of cluster greeter are not loaded/);
    const err = await call(compiled.base.service, "SayHello", { name: "Ada" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect([err?.code, err?.rawMessage]).toEqual([Code.Unavailable, expect.stringMatching(/cluster greeter has not answered server reflection/)]);
  });

  it("loads the routes once the upstream answers, within the refresh interval", async () => {
    await restart("base");
    const r = await until("the greeter's routes", async () => {
      const reply = await send("GET", "/api/v1/greeter/Ada?language=es");
      return reply.status === 200 ? reply : undefined;
    });
    expect(r.body).toEqual({ message: "Hola, Ada!", caller: "", greetedAt: "2023-11-14T22:13:20Z" });
  });

  it("serves an additional binding with its response_body", async () => {
    expect(await send("GET", "/api/v1/greeter/Bob/message")).toEqual({ status: 200, body: "Hello, Bob!" });
  });

  it("requires a signed-in user for a method without a policy (the default access), and forwards the identity", async () => {
    const anonymous = await send("POST", "/api/v1/greetings", { body: { name: "Ada", text: "hi" } });
    expect([anonymous.status, anonymous.body.error]).toEqual([401, "UNAUTHORIZED"]);
    const r = await send("POST", "/api/v1/greetings", { body: { name: "Ada", text: "hi", times: "3" }, token: true });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ text: "hi", times: "3", createdBy: "user-7" });
  });

  it("answers errors in the gateway's envelope: an unknown field, and the upstream's INVALID_ARGUMENT", async () => {
    const unknown = await send("POST", "/api/v1/greetings", { body: { name: "Ada", text: "hi", colour: "red" }, token: true });
    expect([unknown.status, unknown.body.error]).toEqual([400, "VALIDATION_ERROR"]);
    expect(unknown.body.message).toMatch(/colour/);
    const upstream = await send("POST", "/api/v1/greetings", { body: { name: "Ada" }, token: true });
    expect(upstream).toMatchObject({ status: 400, body: { error: "VALIDATION_ERROR", message: "text: is required", requestId: expect.any(String) } });
  });

  it("forwards native gRPC to its methods with the same access policy", async () => {
    const hello = await call(compiled.base.service, "SayHello", { name: "Ada" });
    expect(hello.message).toMatchObject({ message: "Hello, Ada!" });
    const refused = await call(compiled.base.service, "CreateGreeting", { text: "hi" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(refused?.code).toBe(Code.Unauthenticated);
    const created = await call(compiled.base.service, "CreateGreeting", { text: "hi" }, { authorization: `Bearer ${await token()}` });
    expect(created.message).toMatchObject({ text: "hi", createdBy: "user-7" });
  });

  it("is listed and described by the gateway's own server reflection once loaded, its http rules included", async () => {
    const reflection = createReflectionClient(`127.0.0.1:${gateway.port}`);
    try {
      expect(await reflection.listServices()).toContain("demo.greeter.v1.Greeter");
      const { service } = await reflection.describe("demo.greeter.v1.Greeter");
      const sayHello = service.methods.find((m) => m.name === "SayHello")!;
      expect(getOption(sayHello, http)).toMatchObject({ pattern: { case: "get", value: "/api/v1/greeter/{name}" } });
    } finally {
      reflection.close();
    }
  });

  it("lists its paths in /openapi.json with their security", async () => {
    const doc = (await send("GET", "/openapi.json")).body as { paths: Record<string, Record<string, { security: unknown }>> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/v1/greeter/{name}", "/api/v1/greeter/{name}/message", "/api/v1/greetings"]));
    expect(doc.paths["/api/v1/greeter/{name}"]!.get!.security).toEqual([]);
    expect(doc.paths["/api/v1/greetings"]!.post!.security).toEqual([{ bearerAuth: [] }]);
  });

  it("refuses a schema that removes a route, logs why, and keeps serving the last good routes", async () => {
    await restart("breaking");
    const refusal = await until("the refusal", async () => logs.find((l) => /refused the schema of cluster greeter/.test(String(l.msg))));
    expect(refusal).toMatchObject({ level: 40, problems: [expect.stringMatching(/^POST \/api\/v1\/greetings \(demo.greeter.v1.Greeter\/CreateGreeting\) was removed/)] });
    expect((await send("GET", "/api/v1/greeter/Ada")).status).toBe(200);
    // The route stays; the upstream no longer implements it.
    const kept = await send("POST", "/api/v1/greetings", { body: { text: "hi" }, token: true });
    expect([kept.status, kept.body.error]).not.toEqual([404, "NOT_FOUND"]);
    expect(Object.keys((await send("GET", "/openapi.json")).body.paths as object)).toContain("/api/v1/greetings");
  });

  it("applies compatible additions (a new method and route, a new field) without a restart", async () => {
    await restart("extended");
    // Until then, SayHello's /api/v1/greeter/{name} answers this path too (name "Ada:goodbye").
    const bye = await until("the new route", async () => {
      const reply = await send("GET", "/api/v1/greeter/Ada:goodbye");
      return reply.body.message === "Goodbye, Ada!" ? reply : undefined;
    });
    expect(bye).toEqual({ status: 200, body: { message: "Goodbye, Ada!" } });
    expect((await send("GET", "/api/v1/greeter/Ada")).body).toMatchObject({ message: "Hello, Ada!", serverVersion: "extended" });
    expect((await call(compiled.extended.service, "SayGoodbye", { name: "Bo" })).message).toMatchObject({ message: "Goodbye, Bo!" });
    expect(Object.keys((await send("GET", "/openapi.json")).body.paths as object)).toContain("/api/v1/greeter/{name}:goodbye");
    expect(logs.some((l) => /loaded the schema of cluster greeter/.test(String(l.msg)) && (l.added as string[]).includes("GET /api/v1/greeter/{*}:goodbye"))).toBe(true);
  });
});

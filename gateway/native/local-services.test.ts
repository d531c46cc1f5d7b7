import { getOption } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { http } from "../../gen/google/api/annotations_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { createReflectionClient, type ReflectionClient } from "../../test/support/reflection-client.js";
import { createListener, type Listener } from "../server/listener.js";
import { createLocalServices } from "./local-services.js";

// The local services behind the real listener, the way app.ts dispatches to them; anything else gets a 404 "rest".
let listener: Listener;
let address: string;
let serving: boolean;
let stopping: AbortController;
const clients: ReflectionClient[] = [];
const transports: { close(): void }[] = [];

beforeEach(async () => {
  serving = true;
  stopping = new AbortController();
  const local = createLocalServices({
    services: [AuthService, LoggingService], serving: () => serving, stopping: stopping.signal, logger: pino({ level: "silent" }),
  });
  listener = createListener((req, res) => {
    const fixed = req.headers["x-test-fixed-id"];
    const exchange = typeof fixed === "string" ? { requestId: fixed, responseHeaders: new Headers({ vary: "origin" }) } : undefined;
    if (local.handle(req, res, exchange)) return;
    res.statusCode = 404;
    res.setHeader("x-answered-by", "rest");
    res.end();
  });
  address = `127.0.0.1:${await listener.listen(0, "127.0.0.1")}`;
});
afterEach(async () => {
  for (const c of [...clients.splice(0), ...transports.splice(0)]) c.close();
  await listener.close(100);
});

const reflect = (opts: Parameters<typeof createReflectionClient>[1] = {}) => {
  const c = createReflectionClient(address, opts);
  clients.push(c);
  return c;
};

describe("gateway local services: grpc.reflection", () => {
  it("lists the fronted services, health and reflection over v1 and v1alpha", async () => {
    for (const version of ["v1", "v1alpha"] as const) {
      expect(await reflect({ version }).listServices()).toEqual([
        "mesh.auth.v1.AuthService", "mesh.logging.v1.LoggingService", "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
      ]);
    }
  });

  it("describes a service from reflection alone, with its google.api.http options", async () => {
    const { service } = await reflect().describe("mesh.auth.v1.AuthService");
    expect(service.methods.map((m) => m.name)).toEqual(AuthService.methods.map((m) => m.name));
    expect(getOption(service.methods.find((m) => m.name === "GetProfile")!, http).pattern)
      .toEqual({ case: "get", value: "/api/v1/auth/profile" });
  });

  it("answers an unknown symbol with NOT_FOUND and keeps the stream open", async () => {
    const c = reflect();
    const r = await c.ask({ messageRequest: { case: "fileContainingSymbol", value: "mesh.nope.v1.Nope" } });
    expect(r.messageResponse.case === "errorResponse" && r.messageResponse.value.errorCode).toBe(Code.NotFound);
    expect(await c.listServices()).toContain("mesh.auth.v1.AuthService");
    expect((await c.end()).code).toBe(0);
  });

  it("echoes the client's well-formed request id, or the dispatcher's with its reply headers", async () => {
    const own = reflect({ metadata: { "x-request-id": "refl-123" } });
    await own.listServices();
    expect((await own.headers()).get("x-request-id")).toEqual(["refl-123"]);
    const fixed = reflect({ metadata: { "x-request-id": "ignored", "x-test-fixed-id": "gw-1" } });
    await fixed.listServices();
    const h = await fixed.headers();
    expect([h.get("x-request-id"), h.get("vary")]).toEqual([["gw-1"], ["origin"]]);
    const bad = reflect({ metadata: { "x-request-id": "bad id" } });
    await bad.listServices();
    expect(String((await bad.headers()).get("x-request-id")[0])).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("ends an open reflection stream with UNAVAILABLE when the gateway stops", async () => {
    const c = reflect();
    await c.listServices();
    stopping.abort();
    const status = await new Promise<{ code: number }>((resolve) => void c.end().then(resolve));
    expect(status.code).toBe(Code.Unavailable);
  });
});

describe("gateway local services: grpc.health.v1", () => {
  const health = () => {
    const transport = createGrpcTransport({ address });
    transports.push(transport);
    return createClient(Health, transport);
  };

  it("reports the gateway's own liveness under \"\", also over Connect JSON on HTTP/1.1", async () => {
    expect((await health().check({ service: "" })).status).toBe(Status.SERVING);
    const overConnect = createClient(Health, createConnectTransport({ baseUrl: `http://${address}`, httpVersion: "1.1" }));
    expect((await overConnect.check({})).status).toBe(Status.SERVING);
    serving = false;
    expect((await health().check({})).status).toBe(Status.NOT_SERVING);
    expect((await health().list({})).statuses[""]?.status).toBe(Status.NOT_SERVING);
  });

  it("answers another service name with NOT_FOUND (upstreams are /health's business)", async () => {
    const err = await health().check({ service: "mesh.auth.v1.AuthService" }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toMatchObject({ code: Code.NotFound });
  });

  it("watches: SERVING, then NOT_SERVING and the end of the stream when the gateway stops", async () => {
    const seen: Status[] = [];
    const watching = (async () => {
      for await (const r of health().watch({})) {
        seen.push(r.status);
        if (seen.length === 1) stopping.abort();
      }
    })();
    await watching;
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });
});

describe("gateway local services: dispatch", () => {
  it("leaves other paths to the next handler", async () => {
    const r = await fetch(`http://${address}/mesh.auth.v1.AuthService/Login`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect([r.status, r.headers.get("x-answered-by")]).toEqual([404, "rest"]);
  });
});

import http from "node:http";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type RunningGateway } from "../../gateway/app.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { createLogger } from "../../lib/logger.js";
import { createRequestIdSpanProcessor, createW3CPropagator, REQUEST_ID_ATTRIBUTE } from "../../lib/telemetry.js";
import { startAuthHarness, type AuthHarness } from "../support/auth-harness.js";

// This file owns the process-global OpenTelemetry registration (vitest runs each file in a worker of its own).
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [createRequestIdSpanProcessor(), new SimpleSpanProcessor({ exporter })] });

function send(port: number, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: "127.0.0.1", port, method, path, headers: { ...(payload ? { "content-type": "application/json" } : {}), ...headers } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const named = (spans: ReadableSpan[], name: string) => spans.find((s) => s.name === name);

describe("gateway traces", () => {
  let auth: AuthHarness;
  let authStopped: Promise<void> | undefined;
  const stopAuth = () => (authStopped ??= auth.stop());
  let gateway: RunningGateway;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(createW3CPropagator());
    trace.setGlobalTracerProvider(provider);
    auth = await startAuthHarness();
    const cfg = loadGatewayConfig({ env: { GATEWAY_PORT: "0", GATEWAY_ADMIN_PORT: "0", UPSTREAM_AUTH: auth.address } });
    gateway = await startGateway({ ...cfg, listener: { ...cfg.listener, address: "127.0.0.1" } }, createLogger({ service: "gateway", level: "silent" }));
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    if (auth) await stopAuth();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("continues the client's trace: one server span named by route, the trace id returned, request_id on every span, filters as children", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const r = await send(gateway.port, "POST", "/api/v1/auth/login", {
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "x-request-id": "trace-req-1",
    }, { email: "nobody@example.com", password: "wrong password 1" });
    expect([r.status, r.headers["x-trace-id"]]).toEqual([401, traceId]);
    const spans = spansOf(traceId);
    const server = named(spans, "POST /api/v1/auth/login")!;
    expect(server).toBeDefined();
    expect(server.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
    expect(server.attributes).toMatchObject({ "http.request.method": "POST", "http.route": "/api/v1/auth/login", "http.response.status_code": 401 });
    const rateLimit = named(spans, "rate_limit")!;
    expect(rateLimit.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    // The upstream hop: the gateway's CLIENT span under its server span, the auth service's SERVER span under that.
    const client = spans.find((s) => s.name === "mesh.auth.v1.AuthService/Login" && s.kind === SpanKind.CLIENT)!;
    const upstream = spans.find((s) => s.name === "mesh.auth.v1.AuthService/Login" && s.kind === SpanKind.SERVER)!;
    expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(upstream.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(upstream.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "mesh.auth.v1.AuthService", "rpc.method": "Login", "rpc.grpc.status_code": 16 });
    for (const s of spans) expect(s.attributes[REQUEST_ID_ATTRIBUTE], s.name).toBe("trace-req-1");
  });

  it("marks a failing upstream's server span as an error", async () => {
    await stopAuth();
    const r = await send(gateway.port, "POST", "/api/v1/auth/login", {}, { email: "a@example.com", password: "whatever 12" });
    const traceId = String(r.headers["x-trace-id"]);
    expect(r.status).toBe(503);
    const server = named(spansOf(traceId), "POST /api/v1/auth/login")!;
    expect([server.status.code, server.attributes["error.type"]]).toEqual([2, "UNAVAILABLE"]);
  });
});

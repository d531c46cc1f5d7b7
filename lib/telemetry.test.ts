import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  ROOT_CONTEXT,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  DiagLogLevel,
  logs,
  metrics,
  propagation,
  trace,
  TraceFlags,
  isSpanContextValid,
  type Context,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  REQUEST_ID_ATTRIBUTE,
  createRequestIdSpanProcessor,
  createW3CPropagator,
  currentRequestId,
  spanExportStats,
  startTelemetry,
  withRequestId,
} from "./telemetry.js";

/** Context whose baggage carries request_id=`id`, built without any global registration. */
function baggageContext(id: string): Context {
  return propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ request_id: { value: id } }));
}

// Provider-local tracer and explicit contexts: no global OTel state is touched in this block.
describe("createRequestIdSpanProcessor", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    spanProcessors: [createRequestIdSpanProcessor(), new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer("telemetry.test");
  afterEach(() => exporter.reset());
  afterAll(() => provider.shutdown());

  function finished(name: string) {
    const span = exporter.getFinishedSpans().find((s) => s.name === name);
    if (span === undefined) throw new Error(`span ${name} was not exported`);
    return span;
  }

  it("tags a span started in a context whose baggage has request_id", () => {
    tracer.startSpan("op", {}, baggageContext("abc")).end();
    expect(finished("op").attributes[REQUEST_ID_ATTRIBUTE]).toBe("abc");
  });

  it("tags a child span started in the context of a tagged span", () => {
    const ctx = baggageContext("abc");
    const parent = tracer.startSpan("parent", {}, ctx);
    tracer.startSpan("child", {}, trace.setSpan(ctx, parent)).end();
    parent.end();
    expect(finished("child").attributes[REQUEST_ID_ATTRIBUTE]).toBe("abc");
    expect(finished("child").parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });

  it("leaves request_id off a span started without baggage", () => {
    tracer.startSpan("op", {}, ROOT_CONTEXT).end();
    expect(finished("op").attributes).not.toHaveProperty(REQUEST_ID_ATTRIBUTE);
  });
});

describe("createW3CPropagator", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    spanProcessors: [createRequestIdSpanProcessor(), new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer("telemetry.test");
  const propagator = createW3CPropagator();
  afterAll(() => provider.shutdown());

  /** Headers a client would send from inside span `client` with request_id=abc. */
  function clientHeaders() {
    const ctx = baggageContext("abc");
    const client = tracer.startSpan("client", {}, ctx);
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(ctx, client), carrier, defaultTextMapSetter);
    client.end();
    return { carrier, traceId: client.spanContext().traceId };
  }

  it("injects traceparent and baggage headers", () => {
    const { carrier, traceId } = clientHeaders();
    expect(carrier.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(carrier.baggage).toBe("request_id=abc");
  });

  it("continues the trace and request id from extracted headers", () => {
    const { carrier, traceId } = clientHeaders();
    const extracted = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
    const server = tracer.startSpan("server", {}, extracted);
    server.end();
    expect(server.spanContext().traceId).toBe(traceId);
    expect(exporter.getFinishedSpans().find((s) => s.name === "server")?.attributes[REQUEST_ID_ATTRIBUTE]).toBe("abc");
  });
});

describe("withRequestId", () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(() => context.disable());

  it("makes the id the current request id, across awaits", async () => {
    const seen = await withRequestId("req-1", async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return currentRequestId();
    });
    expect(seen).toBe("req-1");
  });

  it("leaves no current request id outside its callback", () => {
    withRequestId("req-1", () => undefined);
    expect(currentRequestId()).toBeUndefined();
  });
});

/** A stand-in OTLP collector on an ephemeral loopback port that records what it receives. */
interface FakeCollector {
  url: string;
  requests: { path: string | undefined; contentType: string | undefined; body: Buffer }[];
  close(): Promise<void>;
}

async function startCollector(): Promise<FakeCollector> {
  const requests: FakeCollector["requests"] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ path: req.url, contentType: req.headers["content-type"], body: Buffer.concat(chunks) });
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A collector that refuses every export with 400 (a permanent failure: the exporter does not retry). */
async function startRefusingCollector(): Promise<FakeCollector> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(400, { "content-type": "text/plain" }).end("refused"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests: [], close: () => new Promise((resolve) => server.close(() => resolve())) };
}

// Each test starts the real SDK, which registers OTel globals; afterEach unregisters them for the next one.
describe("startTelemetry", () => {
  let collector: FakeCollector;
  beforeEach(async () => {
    collector = await startCollector();
  });
  afterEach(async () => {
    vi.unstubAllEnvs();
    trace.disable();
    context.disable();
    propagation.disable();
    logs.disable();
    metrics.disable();
    diag.disable();
    await collector.close();
  });

  it("sends nothing when env has no OTLP endpoint", async () => {
    // The exporter (if one were wrongly created) reads process.env, so point it at the collector as a trap.
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url);
    const telemetry = startTelemetry({ serviceName: "svc-test", env: {} });
    trace.getTracer("t").startSpan("op").end();
    await telemetry.shutdown();
    expect(collector.requests).toEqual([]);
  });

  it("without an OTLP endpoint gives spans valid ids (logs get trace ids) but records only what a caller sampled", async () => {
    const telemetry = startTelemetry({ serviceName: "svc-test", env: {} });
    const root = trace.getTracer("t").startSpan("op");
    expect([isSpanContextValid(root.spanContext()), root.isRecording()]).toEqual([true, false]);
    root.end();
    const sampledParent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true,
    });
    const child = trace.getTracer("t").startSpan("op", {}, sampledParent);
    expect(child.isRecording()).toBe(true);
    child.end();
    await telemetry.shutdown();
  });

  it("samples as OTEL_TRACES_SAMPLER says (parentbased_traceidratio 0: no root), a client's sampled parent still recorded", async () => {
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url);
    vi.stubEnv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
    vi.stubEnv("OTEL_TRACES_SAMPLER_ARG", "0");
    const telemetry = startTelemetry({ serviceName: "svc-test", env: process.env });
    const root = trace.getTracer("t").startSpan("root");
    const sampledParent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true,
    });
    const child = trace.getTracer("t").startSpan("child", {}, sampledParent);
    expect([root.isRecording(), child.isRecording()]).toEqual([false, true]);
    root.end();
    child.end();
    await telemetry.shutdown();
  });

  it("records every span when an OTLP endpoint is set (parent-based, always on)", async () => {
    const telemetry = startTelemetry({ serviceName: "svc-test", env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" } });
    const span = trace.getTracer("t").startSpan("op");
    expect(span.isRecording()).toBe(true);
    span.end();
    await telemetry.shutdown();
  });

  it("writes no OTel diagnostics when started without an OTLP endpoint", async () => {
    const messages: string[] = [];
    const capture = (msg: string) => void messages.push(msg);
    diag.setLogger({ error: capture, warn: capture, info: capture, debug: () => {}, verbose: () => {} }, DiagLogLevel.INFO);
    const telemetry = startTelemetry({ serviceName: "svc-test", env: {} });
    trace.getTracer("t").startSpan("op").end();
    await telemetry.shutdown();
    expect(messages).toEqual([]);
  });

  it("exports spans tagged with request_id as OTLP/HTTP protobuf when an endpoint is set", async () => {
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url);
    const telemetry = startTelemetry({ serviceName: "svc-test", env: process.env });
    withRequestId("req-42", () => trace.getTracer("t").startSpan("op").end());
    await telemetry.shutdown();
    expect(collector.requests).toHaveLength(1);
    const [request] = collector.requests;
    expect(request?.path).toBe("/v1/traces");
    expect(request?.contentType).toBe("application/x-protobuf");
    expect(request?.body.includes("req-42")).toBe(true);
    expect(request?.body.includes("svc-test")).toBe(true);
  });

  it("shuts down within its timeout when the collector is unreachable", async () => {
    await collector.close();
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url);
    const telemetry = startTelemetry({ serviceName: "svc-test", env: process.env, shutdownTimeoutMillis: 200 });
    trace.getTracer("t").startSpan("op").end();
    const started = performance.now();
    await expect(telemetry.shutdown()).resolves.toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
    collector = await startCollector(); // afterEach closes it
  });

  it("counts the spans the collector accepted and those it refused", async () => {
    const before = spanExportStats();
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url);
    let telemetry = startTelemetry({ serviceName: "svc-test", env: process.env });
    for (let i = 0; i < 3; i++) trace.getTracer("t").startSpan("op").end();
    await telemetry.shutdown();
    expect(spanExportStats().exported - before.exported).toBe(3);
    trace.disable();
    context.disable();
    propagation.disable();
    await collector.close();
    collector = await startRefusingCollector();
    vi.stubEnv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url);
    telemetry = startTelemetry({ serviceName: "svc-test", env: process.env });
    for (let i = 0; i < 2; i++) trace.getTracer("t").startSpan("op").end();
    await telemetry.shutdown();
    expect(spanExportStats()).toMatchObject({ exported: before.exported + 3, failed: before.failed + 2, dropped: before.dropped });
  });

  // Counts are per process: this test leaves exports hanging on a collector that never answers, so it runs after
  // the tests that compare counts.
  it("drops and counts the spans beyond its queue while the collector never answers; ending a span never waits", async () => {
    const blackhole = createServer(() => undefined); // accepts, never answers
    await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    const before = spanExportStats();
    try {
      const telemetry = startTelemetry({
        serviceName: "svc-test", shutdownTimeoutMillis: 200,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`, OTEL_BSP_MAX_QUEUE_SIZE: "10" },
      });
      for (let i = 0; i < 1000; i++) trace.getTracer("t").startSpan(`op ${i}`).end();
      expect(spanExportStats().dropped - before.dropped).toBe(990);
      await telemetry.shutdown();
      expect(spanExportStats().exported - before.exported).toBe(0);
    } finally {
      blackhole.closeAllConnections();
      await new Promise((resolve) => blackhole.close(resolve));
    }
  });

  it("records no spans when OTEL_SDK_DISABLED=true", async () => {
    const env = { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: collector.url };
    const telemetry = startTelemetry({ serviceName: "svc-test", env });
    expect(trace.getTracer("t").startSpan("op").isRecording()).toBe(false);
    await telemetry.shutdown();
  });

  it("keeps request-id correlation when OTEL_SDK_DISABLED=true", async () => {
    const telemetry = startTelemetry({ serviceName: "svc-test", env: { OTEL_SDK_DISABLED: "true" } });
    expect(withRequestId("req-7", () => currentRequestId())).toBe("req-7");
    await telemetry.shutdown();
  });
});

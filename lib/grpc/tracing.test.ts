import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createServiceImplSpec } from "@connectrpc/connect";
import { context, propagation, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LogRecordSchema, LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createLogger } from "../logger.js";
import { createRequestIdSpanProcessor, createW3CPropagator, withRequestId } from "../telemetry.js";
import { createGrpcServer, type GrpcServer } from "./server.js";
import { createGrpcTransport, type GrpcTransport } from "./transport.js";

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({
  spanProcessors: [createRequestIdSpanProcessor(), new SimpleSpanProcessor({ exporter })],
});
const lines: Record<string, unknown>[] = [];
const logger = createLogger({ service: "test", destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });

/** What the streaming handler saw: its active span after each await, and whether it was still open at the end. */
const streamSeen: { spans: (Span | undefined)[]; recordingAtEnd?: boolean } = { spans: [] };

// A test double of the handlers only; server, codecs, transport and tracing are real.
const impl = {
  async ingestLog(req: { log?: { requestId: string } }) {
    await sleep(1); // the log below runs in an async continuation of the handler
    logger.info("ingesting");
    if (!req.log?.requestId) throw new ConnectError("request id required", Code.InvalidArgument);
    return { message: "ok" };
  },
  async *tailLogs(req: { userId: string }) {
    try {
      for (let i = 0; i < 3; i++) {
        await sleep(1);
        streamSeen.spans.push(trace.getActiveSpan());
        yield { log: { requestId: `${req.userId}-${i}` } };
      }
      if (req.userId === "fail") throw new ConnectError("tail broke", Code.DataLoss);
    } finally {
      streamSeen.recordingAtEnd = trace.getActiveSpan()?.isRecording();
    }
  },
  async ingestLogStream(reqs: AsyncIterable<{ logs: unknown[] }>) {
    let ingested = 0;
    for await (const r of reqs) ingested += r.logs.length;
    return { ingested };
  },
};

const method = (name: string) => `${LoggingService.typeName}/${name}`;

/** Runs `f` inside a parent span with baggage request_id=req-1, as a gateway request would; returns the parent. */
async function inParent(f: () => Promise<unknown>): Promise<ReadableSpan> {
  const tracer = trace.getTracer("test");
  await withRequestId("req-1", () => tracer.startActiveSpan("parent", async (span) => {
    try {
      await f();
    } finally {
      span.end();
    }
  }));
  return finished().find((s) => s.name === "parent")!;
}

function finished(): ReadableSpan[] {
  return exporter.getFinishedSpans();
}

function spanOf(name: string, kind: SpanKind): ReadableSpan {
  const spans = finished().filter((s) => s.name === method(name) && s.kind === kind);
  expect(spans).toHaveLength(1);
  return spans[0]!;
}

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(createW3CPropagator());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

describe.each([false, true])("gRPC tracing (unaryOverHttp2: %s)", (unaryOverHttp2) => {
  let server: GrpcServer;
  let transport: GrpcTransport;
  let client: ReturnType<typeof createClient<typeof LoggingService>>;
  let port: number;

  beforeAll(async () => {
    server = createGrpcServer({ services: [createServiceImplSpec(LoggingService, impl as never)] });
    port = await server.listen("127.0.0.1", 0);
    transport = createGrpcTransport({ address: `127.0.0.1:${port}`, unaryOverHttp2 });
    client = createClient(LoggingService, transport);
  });
  afterAll(async () => {
    transport.close();
    await server.shutdown(1_000);
  });
  beforeEach(() => {
    exporter.reset();
    lines.length = 0;
    streamSeen.spans = [];
    streamSeen.recordingAtEnd = undefined;
  });

  it("makes the server span a child of the client span, in the caller's trace, both tagged request_id", async () => {
    const parent = await inParent(() => client.ingestLog({ log: create(LogRecordSchema, { requestId: "r" }) }));
    const clientSpan = spanOf("IngestLog", SpanKind.CLIENT);
    const serverSpan = spanOf("IngestLog", SpanKind.SERVER);
    const traceId = parent.spanContext().traceId;
    expect(clientSpan.spanContext().traceId).toBe(traceId);
    expect(serverSpan.spanContext().traceId).toBe(traceId);
    expect(clientSpan.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(serverSpan.parentSpanContext?.spanId).toBe(clientSpan.spanContext().spanId);
    expect(clientSpan.attributes.request_id).toBe("req-1");
    expect(serverSpan.attributes.request_id).toBe("req-1");
  });

  it("names spans <package.Service>/<Method> with the rpc.* attributes", async () => {
    await inParent(() => client.ingestLog({ log: create(LogRecordSchema, { requestId: "r" }) }));
    const rpc = { "rpc.system": "grpc", "rpc.service": LoggingService.typeName, "rpc.method": "IngestLog", "rpc.grpc.status_code": 0 };
    const clientSpan = spanOf("IngestLog", SpanKind.CLIENT);
    const serverSpan = spanOf("IngestLog", SpanKind.SERVER);
    expect(clientSpan.attributes).toMatchObject({ ...rpc, "server.address": "127.0.0.1", "server.port": port });
    expect(serverSpan.attributes).toMatchObject({ ...rpc, "network.peer.address": "127.0.0.1" });
    expect(clientSpan.status.code).toBe(SpanStatusCode.UNSET);
    expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("stamps a handler's log line with the server span's trace_id and span_id", async () => {
    await inParent(() => client.ingestLog({ log: create(LogRecordSchema, { requestId: "r" }) }));
    const serverSpan = spanOf("IngestLog", SpanKind.SERVER);
    const line = lines.find((l) => l.msg === "ingesting");
    expect(line).toMatchObject({
      request_id: "req-1", trace_id: serverSpan.spanContext().traceId, span_id: serverSpan.spanContext().spanId,
    });
  });

  it("marks a failed call ERROR on both sides with its gRPC status code", async () => {
    await inParent(() => client.ingestLog({}).catch(() => undefined));
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = spanOf("IngestLog", kind);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes["rpc.grpc.status_code"]).toBe(Code.InvalidArgument);
      expect(span.events.some((e) => e.name === "exception")).toBe(true);
    }
  });

  it("runs a server-streaming handler inside its span and ends the span after the stream", async () => {
    await inParent(async () => {
      for await (const m of client.tailLogs({ userId: "u" })) void m;
    });
    const serverSpan = spanOf("TailLogs", SpanKind.SERVER);
    expect(streamSeen.spans.map((s) => s?.spanContext().spanId)).toEqual(Array(3).fill(serverSpan.spanContext().spanId));
    expect(streamSeen.recordingAtEnd).toBe(true);
    expect(serverSpan.attributes["rpc.grpc.status_code"]).toBe(0);
    expect(serverSpan.parentSpanContext?.spanId).toBe(spanOf("TailLogs", SpanKind.CLIENT).spanContext().spanId);
  });

  it("marks a stream that fails after its messages ERROR with its code", async () => {
    await inParent(async () => {
      await (async () => {
        for await (const m of client.tailLogs({ userId: "fail" })) void m;
      })().catch(() => undefined);
    });
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = spanOf("TailLogs", kind);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes["rpc.grpc.status_code"]).toBe(Code.DataLoss);
    }
  });

  it("ends one span per side for a client-streaming call", async () => {
    async function* batches() {
      for (let i = 0; i < 3; i++) yield { logs: [create(LogRecordSchema, { requestId: `b${i}` })] };
    }
    await inParent(() => client.ingestLogStream(batches()));
    expect(spanOf("IngestLogStream", SpanKind.CLIENT).attributes["rpc.grpc.status_code"]).toBe(0);
    expect(spanOf("IngestLogStream", SpanKind.SERVER).attributes["rpc.grpc.status_code"]).toBe(0);
  });

  it("tags the server span with x-request-id when the caller sent no baggage", async () => {
    await trace.getTracer("test").startActiveSpan("caller without baggage", async (span) => {
      await client.ingestLog({ log: create(LogRecordSchema, { requestId: "r" }) }, { headers: { "x-request-id": "hdr-1" } });
      span.end();
    });
    expect(spanOf("IngestLog", SpanKind.SERVER).attributes.request_id).toBe("hdr-1");
  });

  it("traces nothing of a call made outside any span (background work), on either side, and says so to the server", async () => {
    let seen: string | undefined;
    const probing = createGrpcTransport({ address: `127.0.0.1:${port}`, unaryOverHttp2, interceptors: [(next) => async (req) => {
      const res = await next(req);
      seen = req.header.get("traceparent") ?? undefined;
      return res;
    }] });
    try {
      await createClient(LoggingService, probing).ingestLog({ log: create(LogRecordSchema, { requestId: "background" }) });
    } finally {
      probing.close();
    }
    expect(seen).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(finished().filter((s) => s.name === method("IngestLog"))).toEqual([]);
  });
});

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOtlpReceiver, type OtlpReceiver } from "./otlp-receiver.js";

// The receiver decodes with OTLP definitions written for the tests (test/proto/opentelemetry): this checks them
// against what the real OTLP/HTTP protobuf exporter sends.
describe("OTLP/HTTP test receiver", () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(() => receiver.close());

  for (const compression of ["none", "gzip"] as const) {
    it(`decodes what the OTLP protobuf exporter sends (compression ${compression}): ids, parent, kind, attributes, status, events, resource`, async () => {
      const provider = new TracerProvider({
        resource: resourceFromAttributes({ "service.name": `svc-${compression}` }),
        spanProcessors: [new SimpleSpanProcessor({
          exporter: new OTLPTraceExporter({ url: `${receiver.endpoint}/v1/traces`, compression: compression as never }),
        })],
      });
      const tracer = provider.getTracer("receiver-test");
      const parent = tracer.startSpan("parent", { kind: SpanKind.SERVER, attributes: { "http.response.status_code": 503, ok: true, ratio: 0.5, tags: ["a", "b"] } });
      const child = tracer.startSpan("child", { kind: SpanKind.CLIENT, attributes: { "rpc.method": "GetProject" } }, trace.setSpan(ROOT_CONTEXT, parent));
      child.recordException(new Error("upstream broke"));
      child.setStatus({ code: SpanStatusCode.ERROR, message: "upstream broke" });
      child.end();
      parent.end();
      await provider.forceFlush();
      const spans = await receiver.waitFor((all) => all.filter((s) => s.resource["service.name"] === `svc-${compression}`).length === 2);
      const p = spans.find((s) => s.name === "parent" && s.resource["service.name"] === `svc-${compression}`)!;
      const c = spans.find((s) => s.name === "child" && s.resource["service.name"] === `svc-${compression}`)!;
      expect(p).toMatchObject({
        traceId: parent.spanContext().traceId, spanId: parent.spanContext().spanId, parentSpanId: "", kind: "server", scope: "receiver-test",
        attributes: { "http.response.status_code": 503, ok: true, ratio: 0.5, tags: ["a", "b"] }, status: { code: "unset" },
      });
      expect(c).toMatchObject({
        traceId: parent.spanContext().traceId, spanId: child.spanContext().spanId, parentSpanId: parent.spanContext().spanId, kind: "client",
        attributes: { "rpc.method": "GetProject" }, status: { code: "error", message: "upstream broke" },
      });
      expect(c.events).toEqual([expect.objectContaining({ name: "exception", attributes: expect.objectContaining({ "exception.message": "upstream broke" }) })]);
      await provider.shutdown();
    });
  }

  it("refuses what is not a protobuf trace export", async () => {
    const before = receiver.spans().length;
    const json = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    const garbage = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body: new Uint8Array([0x0a, 0xff]) });
    const elsewhere = await fetch(`${receiver.endpoint}/v1/metrics`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body: "" });
    expect([json.status, garbage.status, elsewhere.status]).toEqual([415, 400, 404]);
    expect(receiver.spans().length).toBe(before);
  });
});

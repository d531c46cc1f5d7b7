import { ROOT_CONTEXT, context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

/** A logger at `level` (default info) that parses every line it writes into `lines`. */
function capturingLogger(level?: string) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: "svc-test",
    ...(level === undefined ? {} : { level }),
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe("createLogger", () => {
  const provider = new TracerProvider();
  const tracer = provider.getTracer("logger.test");
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(async () => {
    context.disable();
    await provider.shutdown();
  });

  it("adds request_id, trace_id and span_id of the active span and baggage to a line", () => {
    const { logger, lines } = capturingLogger();
    const span = tracer.startSpan("op");
    const baggage = propagation.createBaggage({ request_id: { value: "abc" } });
    context.with(trace.setSpan(propagation.setBaggage(ROOT_CONTEXT, baggage), span), () => logger.info("hello"));
    span.end();
    expect(lines[0]).toMatchObject({
      msg: "hello",
      request_id: "abc",
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
    });
  });

  it("adds no request_id, trace_id or span_id to a line outside any span or baggage", () => {
    const { logger, lines } = capturingLogger();
    logger.info("hello");
    expect(lines[0]).not.toHaveProperty("request_id");
    expect(lines[0]).not.toHaveProperty("trace_id");
    expect(lines[0]).not.toHaveProperty("span_id");
  });

  it("writes the service name on every line", () => {
    const { logger, lines } = capturingLogger();
    logger.child({ component: "x" }).warn("hello");
    expect(lines[0]).toMatchObject({ service: "svc-test", component: "x" });
  });

  it("drops lines below the configured level", () => {
    const { logger, lines } = capturingLogger("warn");
    logger.info("quiet");
    logger.warn("loud");
    expect(lines.map((l) => l.msg)).toEqual(["loud"]);
  });
});

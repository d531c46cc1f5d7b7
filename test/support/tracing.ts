import { context, trace, TraceFlags, type SpanContext } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, beforeEach } from "vitest";

/** What {@link useGlobalTracing} gives a test file. */
export interface TestTracing {
  /** Every span finished since the test began. */
  finished(): ReadableSpan[];
  /** Runs `f` under a recording span of its own; answers that span's context and the spans that are its children. */
  inSpan(f: () => Promise<unknown>): Promise<{ parent: SpanContext; children: ReadableSpan[] }>;
  /** Runs `f` under an active span that does not record (an unsampled trace's, as a client sent it). */
  inUnsampledSpan<T>(f: () => Promise<T>): Promise<T>;
}

/**
 * Registers, for the calling test file, a real tracer provider exporting to memory and the AsyncLocalStorage
 * context manager as the process-global OpenTelemetry state, and removes them after its tests (vitest runs each
 * file in a worker of its own, so the file owns the registration). The export is emptied before each test.
 */
export function useGlobalTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());
  return {
    finished: () => exporter.getFinishedSpans(),
    async inSpan(f) {
      const parent = await trace.getTracer("test").startActiveSpan("parent", async (span) => {
        try {
          await f();
          return span.spanContext();
        } finally {
          span.end();
        }
      });
      const children = exporter.getFinishedSpans().filter((s) => s.parentSpanContext?.spanId === parent.spanId);
      return { parent, children };
    },
    inUnsampledSpan(f) {
      const unsampled = trace.wrapSpanContext({
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.NONE, isRemote: true,
      });
      return context.with(trace.setSpan(context.active(), unsampled), f);
    },
  };
}

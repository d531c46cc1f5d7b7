import {
  context, diag, propagation, trace, TraceFlags, type Attributes, type Context, type TextMapPropagator, type Tracer, type TracerProvider,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, ExportResultCode, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK, type NodeSDKConfiguration } from "@opentelemetry/sdk-node";
import { AlwaysOffSampler, BatchSpanProcessor, ParentBasedSampler, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { ATTR_DEPLOYMENT_ENVIRONMENT_NAME, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

/** W3C baggage key the gateway sets from `x-request-id`; every hop forwards it. */
export const REQUEST_ID_BAGGAGE_KEY = "request_id";

/** Span attribute carrying the request id, so Jaeger's tag search `request_id=<id>` finds the whole trace. */
export const REQUEST_ID_ATTRIBUTE = "request_id";

/** Environment variables, as `process.env` or a test's plain object. */
export type Env = Record<string, string | undefined>;

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** Resource `service.name`. `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` override it, as the spec says. */
  serviceName: string;
  /** Resource `service.version`; omitted when absent. */
  serviceVersion?: string;
  /**
   * Where this module reads `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
   * `OTEL_BSP_*` and `NODE_ENV`. Default `process.env`. The SDK itself reads the other standard `OTEL_*` variables
   * (sampler, resource attributes, exporter headers/timeout) from `process.env`, so pass `process.env` in `main.ts`.
   */
  env?: Env;
  /** Instrumentations to register (pg, grpc, ...). Default none: nothing is patched. */
  instrumentations?: NodeSDKConfiguration["instrumentations"];
  /** Upper bound on `shutdown()` (final span flush), so a dead collector cannot stall SIGTERM. Default 5000. */
  shutdownTimeoutMillis?: number;
}

/** A started telemetry pipeline. */
export interface Telemetry {
  /** Flushes pending spans (best effort, bounded) and stops export. Never rejects. */
  shutdown(): Promise<void>;
}

/**
 * A getter of the tracer `name`, looked up again only when the global tracer provider changes: `trace.getTracer`
 * costs a provider lookup and a map search on every call, and hot paths start a span per request.
 */
export function tracerGetter(name: string): () => Tracer {
  let cached: { provider: TracerProvider; tracer: Tracer } | undefined;
  return () => {
    const provider = trace.getTracerProvider();
    if (cached?.provider !== provider) cached = { provider, tracer: provider.getTracer(name) };
    return cached.tracer;
  };
}

/** Reads the request id from the baggage of `ctx` (default: the active context); undefined when absent. */
export function currentRequestId(ctx: Context = context.active()): string | undefined {
  return propagation.getBaggage(ctx)?.getEntry(REQUEST_ID_BAGGAGE_KEY)?.value;
}

/**
 * Runs `fn` in the active context plus baggage `request_id=requestId` (replacing any earlier one), so spans, logs
 * and outgoing calls made inside carry it. For servers whose caller sent `x-request-id` metadata but no baggage.
 */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  const active = context.active();
  const baggage = (propagation.getBaggage(active) ?? propagation.createBaggage()).setEntry(REQUEST_ID_BAGGAGE_KEY, {
    value: requestId,
  });
  return context.with(propagation.setBaggage(active, baggage), fn);
}

/**
 * A SpanProcessor that copies baggage `request_id` of the span's parent context onto the span as attribute
 * `request_id`. Registered in every process, so every span of a trace is tagged, not only the gateway's.
 */
export function createRequestIdSpanProcessor(): SpanProcessor {
  return {
    onStart(span, parentContext) {
      const requestId = currentRequestId(parentContext);
      if (requestId !== undefined) span.setAttribute(REQUEST_ID_ATTRIBUTE, requestId);
    },
    onEnd() {},
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
}

/** The mesh's propagator: W3C `traceparent`/`tracestate` plus W3C `baggage` (which carries `request_id`). */
export function createW3CPropagator(): TextMapPropagator {
  return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
}

/**
 * Starts the OpenTelemetry NodeSDK for this process and registers it globally: AsyncLocalStorage context,
 * {@link createW3CPropagator}, a tracer provider with {@link createRequestIdSpanProcessor}, and resource
 * `service.name`, `service.version`, `deployment.environment.name` and its pre-1.27 name `deployment.environment` (from
 * `NODE_ENV`; `OTEL_RESOURCE_ATTRIBUTES` wins).
 *
 * Spans always exist (their ids reach logs and `traceparent`), but they are exported only when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set: OTLP HTTP/protobuf through a
 * BatchSpanProcessor whose queue is bounded (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048; overflow is dropped and
 * counted, with failed exports, in {@link spanExportStats}), so a
 * slow or dead collector never blocks or fails a request. Export failures go to OTel's `diag` only, which is
 * silent unless `OTEL_LOG_LEVEL` is set. No metrics or OTel logs are exported.
 *
 * Sampling is the SDK's: `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (e.g. `parentbased_traceidratio`, `0.1`),
 * default `parentbased_always_on` — except that with no export endpoint and no sampler configured, root spans
 * are not recorded (parent-based, root always off): their ids still reach logs and `traceparent`, a request a
 * client marked sampled is still recorded, and nobody pays for spans nothing would export (measured: ~70 µs of
 * the gateway's CPU per request; bench/README.md, Gateway).
 *
 * With `OTEL_SDK_DISABLED=true` no SDK starts (no spans); only the context manager and propagator are registered,
 * so `request_id` still reaches logs and downstream calls.
 */
export function startTelemetry(opts: TelemetryOptions): Telemetry {
  const env = opts.env ?? process.env;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return startCorrelationOnly();
  const sdk = new NodeSDK({
    resource: defaultResource().merge(resourceFromAttributes(resourceAttributes(opts, env))),
    textMapPropagator: createW3CPropagator(),
    spanProcessors: [createRequestIdSpanProcessor(), ...exportProcessors(env)],
    // Explicitly empty: left unset, the SDK defaults both to OTLP exporters aimed at localhost:4318.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: opts.instrumentations ?? [],
    ...(exporting(env) || nonBlank(env.OTEL_TRACES_SAMPLER) ? {} : { sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) }),
  });
  sdk.start();
  const timeoutMillis = opts.shutdownTimeoutMillis ?? 5000;
  return { shutdown: () => settleWithin(sdk.shutdown(), timeoutMillis) };
}

function startCorrelationOnly(): Telemetry {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(createW3CPropagator());
  return { shutdown: () => Promise.resolve() };
}

function resourceAttributes(opts: TelemetryOptions, env: Env): Attributes {
  const attributes: Attributes = { [ATTR_SERVICE_NAME]: opts.serviceName };
  if (opts.serviceVersion !== undefined) attributes[ATTR_SERVICE_VERSION] = opts.serviceVersion;
  if (nonBlank(env.NODE_ENV)) {
    attributes[ATTR_DEPLOYMENT_ENVIRONMENT_NAME] = env.NODE_ENV;
    // The attribute's name before semantic conventions 1.27, still what many backends and dashboards filter on.
    attributes[DEPLOYMENT_ENVIRONMENT_LEGACY] = env.NODE_ENV;
  }
  return attributes;
}

const DEPLOYMENT_ENVIRONMENT_LEGACY = "deployment.environment";

/** Whether spans are exported: an OTLP endpoint is configured. */
function exporting(env: Env): boolean {
  return nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT) || nonBlank(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

function exportProcessors(env: Env): SpanProcessor[] {
  if (!exporting(env)) return [];
  // Built here rather than by the SDK (which would read OTEL_BSP_* itself) because we also add our own processor.
  const maxQueueSize = positiveInt(env.OTEL_BSP_MAX_QUEUE_SIZE) ?? 2048;
  const queue = { length: 0 };
  const exporter = countingExporter(new OTLPTraceExporter(), queue);
  const batch = new BatchSpanProcessor({
    exporter,
    maxQueueSize,
    maxExportBatchSize: positiveInt(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE) ?? 512,
    scheduledDelayMillis: positiveInt(env.OTEL_BSP_SCHEDULE_DELAY) ?? 5000,
    exportTimeoutMillis: positiveInt(env.OTEL_BSP_EXPORT_TIMEOUT) ?? 30_000,
  });
  return [boundedQueue(batch, maxQueueSize, queue)];
}

/** What this process's span export has done since it started (all zero when nothing is exported). */
export interface SpanExportStats {
  /** Spans the collector accepted. */
  readonly exported: number;
  /** Spans dropped because the export queue was full (a slow or unreachable collector). */
  readonly dropped: number;
  /** Spans whose export failed (collector refused or unreachable, timeout). */
  readonly failed: number;
}

const exportStats = { exported: 0, dropped: 0, failed: 0 };

/** How many sampled spans wait in one batch processor's queue. */
interface QueueLength { length: number }

/** This process's span export counts: `/stats` and the periodic telemetry warning report them. */
export function spanExportStats(): SpanExportStats {
  return { exported: exportStats.exported, dropped: exportStats.dropped, failed: exportStats.failed };
}

/** Counts the spans handed to `inner` (they leave `queue`) and how their export ended. */
function countingExporter(inner: SpanExporter, queue: QueueLength): SpanExporter {
  return {
    export(spans, done) {
      queue.length -= spans.length;
      inner.export(spans, (result) => {
        if (result.code === ExportResultCode.SUCCESS) exportStats.exported += spans.length;
        else exportStats.failed += spans.length;
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
}

/**
 * The batch processor behind a gate that knows how many sampled spans wait in its queue: one past `maxQueueSize`
 * is dropped and counted (the batch processor drops it too, but only tells `diag`). Ending a span never waits.
 */
function boundedQueue(batch: BatchSpanProcessor, maxQueueSize: number, queue: QueueLength): SpanProcessor {
  return {
    onStart: (span, parentContext) => batch.onStart(span, parentContext),
    onEnd(span) {
      if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
      if (queue.length >= maxQueueSize) {
        exportStats.dropped++;
        return;
      }
      queue.length++;
      batch.onEnd(span);
    },
    forceFlush: () => batch.forceFlush(),
    shutdown: () => batch.shutdown(),
  };
}

/** Waits for `work` at most `ms`; failures and timeouts are reported to OTel `diag`, never thrown. */
async function settleWithin(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      diag.warn(`telemetry: shutdown did not finish within ${ms} ms; unsent spans are dropped`);
      resolve();
    }, ms);
  });
  const done = work.catch((err: unknown) => diag.warn("telemetry: shutdown failed; unsent spans are dropped", err));
  try {
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function nonBlank(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== "";
}

function positiveInt(raw: string | undefined): number | undefined {
  const n = nonBlank(raw) ? Number(raw) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

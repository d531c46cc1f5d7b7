import { context, isSpanContextValid, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from "@opentelemetry/api";
import { REQUEST_ID_BAGGAGE_KEY, tracerGetter } from "../lib/telemetry.js";
import { remoteAddressOf, type AnyRequest } from "./server/listener.js";

/** The gateway's tracer. */
const tracer = tracerGetter("mesh-gateway");

/** Header carrying the trace id back to the client, so a user can find the trace in Jaeger. */
export const TRACE_ID_HEADER = "x-trace-id";

/** A request's server span and the context its work runs in. */
export interface RequestTrace {
  readonly span: Span;
  readonly context: Context;
  /** The trace id when the span is real (an SDK is registered), else undefined. */
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
}

/**
 * Starts the gateway's SERVER span for a request. Its parent is the client's
 * W3C `traceparent` (a request the client marked sampled stays sampled, the
 * sampler being parent-based), and its context carries baggage
 * `request_id=<the request id>` — replacing any `request_id` the client put
 * in its baggage — so every span of the trace, in every process, and every
 * log line carry the gateway's id.
 */
export function startRequestTrace(req: AnyRequest, requestId: string): RequestTrace {
  // Node's header object is a carrier as it stands: lower-case names, the W3C propagators take the first of repeated values.
  let parent = propagation.extract(context.active(), req.headers);
  const baggage = (propagation.getBaggage(parent) ?? propagation.createBaggage()).setEntry(REQUEST_ID_BAGGAGE_KEY, { value: requestId });
  parent = propagation.setBaggage(parent, baggage);
  const method = req.method ?? "GET";
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  // What a sampler may look at is set at the start; the rest only on a span that records.
  const span = tracer().startSpan(method, {
    kind: SpanKind.SERVER,
    attributes: { "http.request.method": method, "url.path": q < 0 ? url : url.slice(0, q) },
  }, parent);
  if (span.isRecording()) {
    span.setAttributes({
      "client.address": remoteAddressOf(req),
      "user_agent.original": String(req.headers["user-agent"] ?? ""),
      "network.protocol.version": req.httpVersion,
    });
  }
  const sc = span.spanContext();
  const valid = isSpanContextValid(sc);
  return { span, context: trace.setSpan(parent, span), traceId: valid ? sc.traceId : undefined, spanId: valid ? sc.spanId : undefined };
}

/** Ends a request's span with its route (the span's name becomes "GET /api/v1/projects/{id}"), status and error. */
export function endRequestTrace(t: RequestTrace, o: { method: string; route: string; status: number; errorCode?: string | undefined }): void {
  if (t.span.isRecording()) {
    if (o.route) {
      t.span.updateName(`${o.method} ${o.route}`);
      t.span.setAttribute("http.route", o.route);
    }
    t.span.setAttribute("http.response.status_code", o.status);
    if (o.status >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR, message: o.errorCode ?? `HTTP ${o.status}` });
    if (o.errorCode) t.span.setAttribute("error.type", o.errorCode);
  }
  t.span.end();
}

/**
 * Runs one step of the filter chain (authn, rate limit, cache…) in an
 * INTERNAL span of its own, marked ERROR when it throws.
 */
export async function traced<T>(name: string, f: () => Promise<T>): Promise<T> {
  // Under a span that records nothing (an unsampled trace), a child would record nothing either: skip it.
  if (trace.getActiveSpan()?.isRecording() === false) return f();
  return tracer().startActiveSpan(name, async (span) => {
    try {
      return await f();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

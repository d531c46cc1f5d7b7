import { randomBytes } from "node:crypto";
import {
  context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags,
  type Attributes, type Context, type Span, type SpanContext, type TextMapGetter, type TextMapSetter,
} from "@opentelemetry/api";
import { Code, ConnectError, createContextKey, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { REQUEST_ID_BAGGAGE_KEY, currentRequestId, tracerGetter } from "../telemetry.js";
import { REQUEST_ID_HEADER } from "./interceptors.js";

// RPC semantic conventions are still incubating; the spec advises copying their names rather than importing
// `@opentelemetry/semantic-conventions/incubating` (https://opentelemetry.io/docs/specs/semconv/rpc/grpc/).
const RPC_SYSTEM = "rpc.system";
const RPC_SERVICE = "rpc.service";
const RPC_METHOD = "rpc.method";
const RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code";

const tracer = tracerGetter("mesh.grpc");

/** Context value of a server call: the caller's `host:port` as grpc-js reports it (`call.getPeer`), asked only by a span that records. */
export const kPeerAddress = createContextKey<(() => string) | undefined>(undefined, { description: "gRPC peer address" });

const headerGetter: TextMapGetter<Headers> = {
  keys: (h) => [...h.keys()],
  get: (h, key) => h.get(key) ?? undefined,
};
const headerSetter: TextMapSetter<Headers> = { set: (h, key, value) => h.set(key, value) };

/**
 * Server interceptor, outermost: a SERVER span `<package.Service>/<Method>` per call (OTel RPC semconv), its
 * parent extracted from the request metadata (`traceparent`, `tracestate`, `baggage`) with the global
 * propagator. When the caller sent `x-request-id` but no baggage `request_id`, the id becomes baggage first, so
 * the span and everything under it carry it. The rest of the chain and the handler, including every pull of a
 * response stream, run in the span's context. The span ends once, with `rpc.grpc.status_code` and, on any
 * non-OK code, status ERROR plus the recorded exception.
 */
export function createServerTracingInterceptor(): Interceptor {
  return (next) => async (req) => {
    let parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const headerId = req.header.get(REQUEST_ID_HEADER);
    if (headerId && currentRequestId(parent) === undefined) parent = withBaggageRequestId(parent, headerId);
    const span = tracer().startSpan(spanName(req), { kind: SpanKind.SERVER, attributes: rpcAttributes(req.service.typeName, req.method.name) }, parent);
    const peer = req.contextValues.get(kPeerAddress);
    if (peer && span.isRecording()) span.setAttributes(hostPort(peer(), "network.peer.address", "network.peer.port"));
    const spanContext = trace.setSpan(parent, span);
    const finish = finisher(span);
    return context.with(spanContext, () => traced(() => next(req), finish, req.signal, spanContext));
  };
}

/**
 * Client interceptor, innermost: a CLIENT span `<package.Service>/<Method>` per call made inside a recording
 * span (none outside any span or under an unsampled one, whose context is still passed on), child of the context
 * active when the call starts, injected into the outgoing metadata (W3C `traceparent`/`tracestate`/`baggage`)
 * so the server's span becomes its child and baggage `request_id` crosses the hop. `address` is the
 * transport's target (`host:port`, optionally `dns:///`), recorded as `server.address`/`server.port`.
 * Ends once, like the server span; a response stream abandoned early ends CANCELLED.
 */
export function createClientTracingInterceptor(address: string): Interceptor {
  const target = hostPort(address.replace(/^dns:\/\/\//, ""), "server.address", "server.port");
  return (next) => async (req) => {
    const parent = context.active();
    const active = trace.getSpan(parent);
    if (!active || !active.isRecording()) {
      // An unsampled trace records nothing below it (parent-based sampling): pass its context on, skip the span.
      // A call made outside any span (a background loop: rollups, health checks, watch and access-log streams)
      // is not traced either: it carries an unsampled context of its own, so the server records nothing and
      // the background does not fill the tracing backend with a trace per tick.
      propagation.inject(active ? parent : trace.setSpanContext(parent, unsampledContext()), req.header, headerSetter);
      return next(req);
    }
    const attributes = { ...rpcAttributes(req.service.typeName, req.method.name), ...target };
    const span = tracer().startSpan(spanName(req), { kind: SpanKind.CLIENT, attributes }, parent);
    const spanContext = trace.setSpan(parent, span);
    propagation.inject(spanContext, req.header, headerSetter);
    return context.with(spanContext, () => traced(() => next(req), finisher(span), req.signal, undefined));
  };
}

/** A fresh, valid span context marked not sampled. */
function unsampledContext(): SpanContext {
  const ids = randomBytes(24).toString("hex");
  return { traceId: ids.slice(0, 32), spanId: ids.slice(32), traceFlags: TraceFlags.NONE, isRemote: false };
}

type AnyResponse = Awaited<ReturnType<Parameters<Interceptor>[0]>>;

/** Runs `call`; ends the span when a unary call settles, or when a response stream ends, fails or is abandoned. */
async function traced(call: () => Promise<AnyResponse>, finish: Finish, signal: AbortSignal,
  pullContext: Context | undefined): Promise<AnyResponse> {
  let res: AnyResponse;
  try {
    res = await call();
  } catch (err) {
    finish(err);
    throw err;
  }
  if (!res.stream) {
    finish(undefined);
    return res;
  }
  return { ...res, message: tracedStream(res as StreamResponse, finish, signal, pullContext) } as AnyResponse;
}

/**
 * Yields the stream's messages, ending the span at its end. With `pullContext`, each pull runs in it: an async
 * generator's body runs in the context of whoever calls `next()`, so a server handler would otherwise run outside
 * its span.
 */
async function* tracedStream(res: StreamResponse, finish: Finish, signal: AbortSignal, pullContext: Context | undefined) {
  const it = res.message[Symbol.asyncIterator]();
  const pull = <T>(f: () => Promise<T>) => (pullContext ? context.with(pullContext, f) : f());
  let done = false;
  try {
    for (;;) {
      const r = await pull(() => it.next());
      if (r.done) break;
      yield r.value;
    }
    done = true;
    finish(undefined);
  } catch (err) {
    done = true;
    finish(err);
    throw err;
  } finally {
    if (!done) {
      // The reader stopped early: a cancelled call, a deadline or a shutdown (signal's reason), else the caller's choice.
      finish(signal.aborted ? signal.reason : new ConnectError("stream abandoned by its reader", Code.Canceled));
      await pull(async () => it.return?.());
    }
  }
}

type Finish = (err: unknown) => void;

/** Ends `span` at most once: `rpc.grpc.status_code`, and ERROR with the exception for a non-OK code. */
function finisher(span: Span): Finish {
  let ended = false;
  return (err) => {
    if (ended) return;
    ended = true;
    if (err === undefined) {
      span.setAttribute(RPC_GRPC_STATUS_CODE, 0);
    } else {
      const e = ConnectError.from(err, Code.Internal);
      span.setAttribute(RPC_GRPC_STATUS_CODE, e.code);
      span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.rawMessage });
    }
    span.end();
  };
}

function spanName(req: { service: { typeName: string }; method: { name: string } }): string {
  return `${req.service.typeName}/${req.method.name}`;
}

function rpcAttributes(service: string, method: string): Attributes {
  return { [RPC_SYSTEM]: "grpc", [RPC_SERVICE]: service, [RPC_METHOD]: method };
}

/** `host:port` / `[v6]:port` as two attributes; a value without a port is the address alone. */
function hostPort(value: string, addressKey: string, portKey: string): Attributes {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(value);
  return m ? { [addressKey]: m[1], [portKey]: Number(m[2]) } : { [addressKey]: value };
}

function withBaggageRequestId(ctx: Context, requestId: string): Context {
  const baggage = (propagation.getBaggage(ctx) ?? propagation.createBaggage()).setEntry(REQUEST_ID_BAGGAGE_KEY, {
    value: requestId,
  });
  return propagation.setBaggage(ctx, baggage);
}

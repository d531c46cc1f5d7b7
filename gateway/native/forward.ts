import type { DescMessage, DescMethod, DescMethodStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type HandlerContext, type Transport } from "@connectrpc/connect";

/** Metadata the request gate admitted for the upstream call (identity, request id, trace context). */
export const kUpstreamHeaders = createContextKey<Headers | undefined>(undefined, { description: "upstream metadata" });

export interface ForwardDeps {
  /** The transport of the cluster owning `method`'s service; throws UNAVAILABLE when none does. */
  readonly transportFor: (method: DescMethod) => Transport;
  /** The gateway's own response header (never taken from upstream); errors carry it in their metadata too. */
  readonly requestIdHeader: string;
  /** Told about failures that are not ConnectErrors (bugs), before they become INTERNAL. */
  readonly onUnexpected: (err: unknown, ctx: HandlerContext) => void;
}

type Message = MessageShape<DescMessage>;

/**
 * A Connect method implementation that forwards every call of `method`
 * upstream unchanged: messages in both directions as they come (all four RPC
 * kinds), the client's deadline and cancellation, the gated metadata, the
 * upstream's response headers and trailers, and its errors with code,
 * message, metadata and details.
 */
export function forwardMethod(method: DescMethod, deps: ForwardDeps): unknown {
  switch (method.methodKind) {
    case "unary":
      return async (input: Message, ctx: HandlerContext) => {
        try {
          const res = await deps.transportFor(method).unary(method as DescMethodUnary, ctx.signal, ctx.timeoutMs(), upstreamHeaders(ctx), input);
          relay(res.header, ctx.responseHeader, deps.requestIdHeader);
          relay(res.trailer, ctx.responseTrailer, deps.requestIdHeader);
          return res.message;
        } catch (err) {
          throw upstreamError(err, ctx, deps);
        }
      };
    case "server_streaming":
      return (input: Message, ctx: HandlerContext) => stream(method, ctx, one(input), deps);
    case "client_streaming":
      return async (input: AsyncIterable<Message>, ctx: HandlerContext) => {
        let reply: Message | undefined;
        for await (const m of stream(method, ctx, input, deps)) reply = m;
        if (reply === undefined) throw new ConnectError("upstream answered no message", Code.Internal);
        return reply;
      };
    case "bidi_streaming":
      return (input: AsyncIterable<Message>, ctx: HandlerContext) => stream(method, ctx, input, deps);
  }
}

async function* stream(method: DescMethod, ctx: HandlerContext, input: AsyncIterable<Message>, deps: ForwardDeps): AsyncIterable<Message> {
  try {
    const res = await deps.transportFor(method).stream(method as DescMethodStreaming, ctx.signal, ctx.timeoutMs(), upstreamHeaders(ctx), input);
    // Connect sends the response headers with the first message (or the end), so these still make it.
    relay(res.header, ctx.responseHeader, deps.requestIdHeader);
    for await (const m of res.message) yield m;
    relay(res.trailer, ctx.responseTrailer, deps.requestIdHeader);
  } catch (err) {
    throw upstreamError(err, ctx, deps);
  }
}

function upstreamHeaders(ctx: HandlerContext): Headers {
  const h = ctx.values.get(kUpstreamHeaders);
  // The gate always sets them; without, fail closed rather than call upstream unauthenticated.
  if (h === undefined) throw new ConnectError("call was not admitted", Code.Internal);
  return h;
}

// Framing and hop-by-hop headers: each protocol writes its own.
const protocolHeaders = new Set(["content-type", "content-length", "content-encoding", "te", "date", "connection",
  "keep-alive", "transfer-encoding", "trailer", "user-agent", "accept-encoding"]);

function isFraming(key: string): boolean {
  return protocolHeaders.has(key) || key.startsWith("grpc-") || key.startsWith("connect-");
}

/** Copies upstream headers or trailers onto the client's, minus framing and the gateway's own. */
function relay(from: Headers, to: Headers, own: string): void {
  from.forEach((value, key) => {
    if (isFraming(key) || key === own) return;
    to.set(key, value);
  });
}

/**
 * The error the client sees. A deadline or cancellation of the client's own
 * call wins over the upstream's view of it (the upstream call is cancelled
 * with it). Upstream errors keep code, message and details; they are rebuilt
 * because Connect drops the metadata (trailers) of errors read off the wire.
 */
function upstreamError(err: unknown, ctx: HandlerContext, deps: ForwardDeps): ConnectError {
  let relayed: ConnectError;
  if (ctx.signal.aborted && ctx.signal.reason instanceof ConnectError) {
    relayed = ctx.signal.reason;
  } else if (!(err instanceof ConnectError)) {
    deps.onUnexpected(err, ctx);
    relayed = new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  } else if (err.isWireError) {
    const metadata = new Headers();
    relay(err.metadata, metadata, deps.requestIdHeader);
    relayed = new ConnectError(err.rawMessage, err.code, metadata, undefined, err);
    relayed.details.push(...err.details);
  } else {
    relayed = err;
  }
  return tagFailure(relayed, ctx, [deps.requestIdHeader]);
}

/**
 * Copies reply headers (`names`: the request id, rate-limit headers) into a
 * failure's metadata when the protocol sends that as trailers (gRPC,
 * gRPC-Web): many gRPC clients show only the trailers of a failed call.
 * Connect merges error metadata into the headers, which already carry them.
 */
export function tagFailure<E>(err: E, ctx: HandlerContext, names: Iterable<string>): E {
  if (!(err instanceof ConnectError) || ctx.protocolName === "connect") return err;
  for (const name of names) {
    const value = ctx.responseHeader.get(name);
    if (value !== null && !isFraming(name)) err.metadata.set(name, value);
  }
  return err;
}

async function* one<T>(value: T): AsyncIterable<T> {
  yield value;
}

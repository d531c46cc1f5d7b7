import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { Access, methodPolicy } from "../../lib/policy.js";
import type { Cluster } from "../clusters/cluster.js";
import { requestIdOf } from "../filters/request-id.js";
import { remoteAddressOf, type AnyRequest, type AnyResponse } from "../server/listener.js";
import { forwardMethod, kUpstreamHeaders, tagFailure } from "./forward.js";
import { routerDispatcher } from "./dispatch.js";

/** What the dispatcher already knows about a request it hands to `handle`; all optional. */
export interface NativeExchange {
  /** The id it fixed for the request (e.g. for its access log); default: the client's well-formed one or a new one. */
  readonly requestId?: string;
  /** Reply headers it decided (CORS); sent on every reply, success or not. */
  readonly responseHeaders?: Headers;
}

/** One native call as the gateway's filters see it before it is forwarded. */
export interface NativeCall<X extends NativeExchange = NativeExchange> {
  readonly method: DescMethod;
  /** The client's request metadata (HTTP headers; gRPC `-bin` values still base64). */
  readonly requestHeader: Headers;
  readonly requestId: string;
  /** The client's address (anonymous callers are rate-limited by it). */
  readonly remoteAddress: string;
  /** Reply headers `admit` may add (X-RateLimit-*, Retry-After); sent on refusals too. */
  readonly responseHeader: Headers;
  /** What the dispatcher passed to `handle` (so `admit` can record the caller for its access log). */
  readonly exchange: X | undefined;
}

export interface NativeHandlerOptions<X extends NativeExchange = NativeExchange> {
  /** Services reachable as `/<package.Service>/<Method>`. */
  readonly services: readonly DescService[];
  /** The cluster owning a service; undefined → UNAVAILABLE. */
  readonly clusterFor: (service: DescService) => Cluster | undefined;
  /**
   * Authentication, API key, rate limit: resolves with the metadata to send
   * upstream (identity etc.), or throws a ConnectError to refuse the call
   * before any request message is read. Not called for internal methods.
   */
  readonly admit: (call: NativeCall<X>) => Promise<Headers>;
  /** Header carrying the request id to and from clients; default `x-request-id`. Upstream always gets `x-request-id`. */
  readonly requestIdHeader?: string;
  /** Largest request or response message, after decompression; default 4 MiB. */
  readonly maxMessageBytes?: number;
  readonly logger: Logger;
}

export interface NativeHandler<X extends NativeExchange = NativeExchange> {
  /**
   * Takes the request when it is an RPC of a known method in a protocol served
   * here (and answers it); false leaves it to REST, untouched.
   */
  handle(req: AnyRequest, res: AnyResponse, exchange?: X): boolean;
}

/** What `handle` knows about the request and the gate needs. */
const kExchange = createContextKey<{ readonly exchange: NativeExchange | undefined; readonly remoteAddress: string }>(
  { exchange: undefined, remoteAddress: "" }, { description: "native exchange" });

// Trace context forwarded as the client sent it, unless `admit` set its own.
const TRACE_HEADERS = ["traceparent", "tracestate"] as const;

/**
 * gRPC (HTTP/2), gRPC-Web and Connect (HTTP/1.1 and h2c) for every method of
 * `services`, forwarded to the owning cluster with streaming intact. Calls go
 * through a Connect router (the three protocols, compression, deadlines,
 * message limits) whose implementations relay each message to the cluster's
 * grpc-js transport; see README.md for why not a byte-level passthrough.
 *
 * Before a request message is read, the request gate: fixes the request id
 * (the dispatcher's, else the client's well-formed one, else a new one; echoed
 * on the reply with the dispatcher's reply headers), refuses
 * INTERNAL methods and those with no policy with PERMISSION_DENIED without
 * calling `admit` or upstream, then lets `admit` decide. Upstream metadata is
 * exactly what `admit` returns plus `x-request-id`, W3C trace context and
 * baggage (with `request_id`): identity metadata sent by clients never passes.
 */
export function createNativeHandler<X extends NativeExchange = NativeExchange>(opts: NativeHandlerOptions<X>): NativeHandler<X> {
  const requestIdHeader = (opts.requestIdHeader ?? "x-request-id").toLowerCase();
  const maxBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
  const refused = new Set(opts.services.flatMap((s) => s.methods).filter((m) => {
    const access = methodPolicy(m).access;
    return access === Access.INTERNAL || access === Access.UNSPECIFIED;
  }));
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: maxBytes,
    writeMaxBytes: maxBytes,
    // As on REST: an unknown JSON field is INVALID_ARGUMENT, not silence.
    jsonOptions: { ignoreUnknownFields: false },
    requestGate: (ctx) => gate(ctx, opts, requestIdHeader, refused),
  });
  const deps = {
    transportFor: (method: DescMethod) => {
      const cluster = opts.clusterFor(method.parent);
      if (!cluster) throw new ConnectError(`no cluster serves ${method.parent.typeName}`, Code.Unavailable);
      return cluster.transport;
    },
    requestIdHeader,
    onUnexpected: (err: unknown, ctx: HandlerContext) =>
      opts.logger.error({ err, request_id: ctx.responseHeader.get(requestIdHeader), rpc: ctx.url }, "native call failed unexpectedly"),
  };
  for (const service of opts.services) {
    for (const method of service.methods) router.rpc(method, forwardMethod(method, deps) as never);
  }
  const dispatch = routerDispatcher(router.handlers, opts.logger);
  return {
    handle(req, res, exchange) {
      return dispatch(req, res, () => createContextValues().set(kExchange, { exchange, remoteAddress: remoteAddressOf(req) }));
    },
  };
}

async function gate<X extends NativeExchange>(ctx: HandlerContext, opts: NativeHandlerOptions<X>, requestIdHeader: string,
  refused: ReadonlySet<DescMethod>): Promise<void> {
  const { exchange: given, remoteAddress } = ctx.values.get(kExchange);
  const exchange = given as X | undefined; // handle() stored the X it was given
  exchange?.responseHeaders?.forEach((value, key) => ctx.responseHeader.set(key, value));
  const requestId = exchange?.requestId ?? requestIdOf(ctx.requestHeader.get(requestIdHeader) ?? undefined);
  ctx.responseHeader.set(requestIdHeader, requestId);
  // A refusal also carries the request id and what admit added (Retry-After…) as trailers.
  const before = new Set(ctx.responseHeader.keys());
  const tagged = (err: unknown) => tagFailure(err, ctx, [requestIdHeader, ...[...ctx.responseHeader.keys()].filter((k) => !before.has(k))]);
  if (refused.has(ctx.method)) {
    throw tagged(new ConnectError(`${ctx.method.parent.typeName}/${ctx.method.name} is not reachable from outside`, Code.PermissionDenied));
  }
  let upstream: Headers;
  try {
    upstream = new Headers(await opts.admit({
      method: ctx.method, requestHeader: ctx.requestHeader, requestId, remoteAddress, responseHeader: ctx.responseHeader, exchange,
    }));
  } catch (err) {
    throw tagged(err);
  }
  upstream.set("x-request-id", requestId);
  for (const name of TRACE_HEADERS) {
    const value = ctx.requestHeader.get(name);
    if (value !== null && !upstream.has(name)) upstream.set(name, value);
  }
  upstream.set("baggage", withRequestId(upstream.get("baggage") ?? ctx.requestHeader.get("baggage"), requestId));
  ctx.values.set(kUpstreamHeaders, upstream);
}

/** W3C baggage with `request_id` set to the gateway's id (a client's own `request_id` entry is replaced). */
function withRequestId(baggage: string | null, requestId: string): string {
  const kept = (baggage ?? "").split(",").map((e) => e.trim()).filter((e) => e !== "" && e.split("=", 1)[0]!.trim() !== "request_id");
  return [...kept, `request_id=${requestId}`].join(",");
}

import { once } from "node:events";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import { reflectionIndexFor } from "../../lib/grpc/reflection.js";
import { requestIdOf } from "../filters/request-id.js";
import { tagFailure } from "./forward.js";
import { routerDispatcher } from "./dispatch.js";
import type { NativeExchange, NativeHandler } from "./proxy.js";

export interface LocalServicesOptions {
  /**
   * The services the gateway fronts, listed and described by reflection: a list, or a function answering the
   * current one (services loaded over their upstream's reflection come and change while the gateway runs),
   * the same list object until it changes.
   */
  readonly services: readonly DescService[] | (() => readonly DescService[]);
  /** The gateway's own liveness for `grpc.health.v1` (service ""): true once it listens, false once it stops. */
  readonly serving: () => boolean;
  /** Aborted when the gateway stops: open reflection streams end with UNAVAILABLE, health watches with NOT_SERVING. */
  readonly stopping: AbortSignal;
  /** Header carrying the request id; default `x-request-id`. */
  readonly requestIdHeader?: string;
  /** Largest request or response message; default 4 MiB. */
  readonly maxMessageBytes?: number;
  readonly logger: Logger;
}

const kExchange = createContextKey<NativeExchange | undefined>(undefined, { description: "local exchange" });

/**
 * The gRPC services the gateway answers itself on its listener, in every
 * native protocol (gRPC, gRPC-Web, Connect; bidi needs HTTP/2):
 * `grpc.reflection.v1` and `v1alpha` describing the fronted services from the
 * gateway's own descriptors (gen/, custom options included; see
 * lib/grpc/reflection-index.ts), and `grpc.health.v1` reporting the gateway's
 * own liveness under "" (upstreams: `/health`). Public metadata, as on every
 * grpc-js server: no authentication, API key or rate limit. The reply carries
 * the request id (the dispatcher's, else the client's well-formed one, else a
 * new one) and the dispatcher's reply headers.
 */
export function createLocalServices(opts: LocalServicesOptions): NativeHandler {
  const requestIdHeader = (opts.requestIdHeader ?? "x-request-id").toLowerCase();
  const maxBytes = opts.maxMessageBytes ?? 4 * 1024 * 1024;
  const current = typeof opts.services === "function" ? opts.services : () => opts.services as readonly DescService[];
  // Indexed again only when the list changes (a reflection refresh applied a new schema: a new list).
  let indexed: { services: readonly DescService[]; index: ReturnType<typeof reflectionIndexFor> } | undefined;
  const index = () => {
    const services = current();
    if (indexed?.services !== services) indexed = { services, index: reflectionIndexFor(services) };
    return indexed.index;
  };
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: maxBytes,
    writeMaxBytes: maxBytes,
    requestGate: (ctx) => {
      const exchange = ctx.values.get(kExchange);
      exchange?.responseHeaders?.forEach((value, key) => ctx.responseHeader.set(key, value));
      ctx.responseHeader.set(requestIdHeader, exchange?.requestId ?? requestIdOf(ctx.requestHeader.get(requestIdHeader) ?? undefined));
    },
  });
  router.service(v1.ServerReflection, { serverReflectionInfo: (requests) => answerEach(requests, (r) => index().answer(r), opts.stopping) });
  router.service(v1alpha.ServerReflection, { serverReflectionInfo: (requests) => answerEach(requests, (r) => index().answerV1alpha(r), opts.stopping) });
  const status = () => (opts.serving() && !opts.stopping.aborted ? Status.SERVING : Status.NOT_SERVING);
  router.service(Health, {
    check(req, ctx) {
      if (req.service !== "") throw tagFailure(new ConnectError(`unknown service ${req.service}`, Code.NotFound), ctx, [requestIdHeader]);
      return { status: status() };
    },
    list: () => ({ statuses: { "": { status: status() } } }),
    watch: (req, ctx) => watch(req.service === "", status, AbortSignal.any([opts.stopping, ctx.signal]), opts.stopping),
  });
  const dispatch = routerDispatcher(router.handlers, opts.logger);
  return {
    handle: (req, res, exchange) => dispatch(req, res, () => createContextValues().set(kExchange, exchange)),
  };
}

/** One answer per request, in order, until the client half-closes; the gateway stopping ends the stream (UNAVAILABLE). */
async function* answerEach<I, O>(requests: AsyncIterable<I>, answer: (request: I) => O, stopping: AbortSignal): AsyncIterable<O> {
  const it = requests[Symbol.asyncIterator]();
  for (;;) {
    const next = await untilAborted(it.next(), stopping);
    if (next.done) return;
    yield answer(next.value);
  }
}

/**
 * `grpc.health.v1.Health/Watch`: the status now (SERVICE_UNKNOWN for a name other than ""), then, once the
 * gateway stops, NOT_SERVING and the end of the stream. `ended` fires on either stop or the call's end.
 */
async function* watch(known: boolean, status: () => Status, ended: AbortSignal, stopping: AbortSignal) {
  yield { status: known ? status() : Status.SERVICE_UNKNOWN };
  if (!ended.aborted) await once(ended, "abort");
  if (known && stopping.aborted) yield { status: Status.NOT_SERVING };
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  const stopped = () => new ConnectError("the gateway is shutting down; reconnect", Code.Unavailable);
  if (signal.aborted) return Promise.reject(stopped());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(stopped());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

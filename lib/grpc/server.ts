import { once } from "node:events";
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import {
  Code, ConnectError, createContextValues, createServiceImplSpec,
  type HandlerContext, type Interceptor, type MethodImplSpec, type ServiceImpl, type ServiceImplSpec,
} from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { invokeStream, invokeUnary } from "./invoke.js";
import { HeaderMap } from "../header-map.js";
import { addReflection } from "./reflection.js";
import { grpcStatusFromError, headersFromMetadata, metadataFromHeaders } from "./status.js";
import { createServerTracingInterceptor, kPeerAddress } from "./tracing.js";

/** One service to serve: its descriptor and its full generated implementation. */
export function serviceRegistration<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceImplSpec {
  return createServiceImplSpec(service, impl);
}

export interface GrpcServerOptions {
  readonly services: readonly ServiceImplSpec[];
  /**
   * Server interceptors, first outermost; the same ones work under `createRouterTransport`. Every call runs
   * inside an OpenTelemetry SERVER span (lib/grpc/tracing.ts), outside all of them.
   */
  readonly interceptors?: readonly Interceptor[];
  /** Largest accepted request message; default 4 MiB. */
  readonly maxReceiveBytes?: number;
}

export interface GrpcServer {
  /** Binds `host:port` (port 0 picks a free one) and resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops accepting calls, reports NOT_SERVING, ends open streams, lets unary
   * calls finish for up to `drainMs` (default 10 s), then cancels the rest.
   */
  shutdown(drainMs?: number): Promise<void>;
  readonly health: HealthImplementation;
}

/**
 * Serves protobuf-es `ServiceImpl`s over gRPC with `@grpc/grpc-js` (the
 * transport DESIGN.md chose from measurements), plus `grpc.health.v1` and
 * `grpc.reflection.v1`/`v1alpha` for every registered service.
 */
export function createGrpcServer(opts: GrpcServerOptions): GrpcServer {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": opts.maxReceiveBytes ?? 4 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
  });
  // Tracing outermost, so every interceptor and the handler run inside the call's SERVER span.
  const interceptors = [createServerTracingInterceptor(), ...(opts.interceptors ?? [])];
  const streamsDone = new AbortController();
  const statuses: Record<string, "SERVING"> = { "": "SERVING" };
  for (const spec of opts.services) {
    server.addService(definitionFor(spec.service), handlersFor(spec, interceptors, streamsDone.signal));
    statuses[spec.service.typeName] = "SERVING";
  }
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  addReflection(server, opts.services.map((s) => s.service));

  return {
    health,
    async listen(host, port) {
      return new Promise((resolve, reject) => {
        server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
          err ? reject(err) : resolve(bound));
      });
    },
    async shutdown(drainMs = 10_000) {
      for (const name of Object.keys(statuses)) health.setStatus(name, "NOT_SERVING");
      streamsDone.abort(new ConnectError("server is shutting down", Code.Unavailable));
      const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const timer = setTimeout(() => server.forceShutdown(), drainMs);
      await drained;
      clearTimeout(timer);
    },
  };
}

function definitionFor(service: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: serializer(m.input),
      requestDeserialize: deserializer(m.input),
      responseSerialize: serializer(m.output),
      responseDeserialize: deserializer(m.output),
      originalName: m.name,
    };
  }
  return def;
}

/** protobuf-es binary codec for grpc-js. */
export function serializer(desc: DescMessage) {
  return (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(desc, msg));
}

/** protobuf-es binary codec for grpc-js. */
export function deserializer(desc: DescMessage) {
  return (buf: Buffer) => fromBinary(desc, buf);
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

/** A call's handler context and what ends it: `end` clears its deadline timer and aborts its signal. */
interface CallContext extends HandlerContext {
  end(reason: unknown): void;
}

/** The abort reason of a call that has ended normally (one error for all: building one per call costs its stack). */
const CALL_ENDED = new ConnectError("the call has ended", Code.Canceled);

const deadlineExceeded = () => new ConnectError("the operation timed out", Code.DeadlineExceeded);

/**
 * The HandlerContext Connect's `createHandlerContext` would build, made directly: one AbortController per call,
 * aborted by the deadline (DEADLINE_EXCEEDED), the client's cancellation (CANCELLED), the server's shutdown
 * (streams) or the end of the call; headers as {@link HeaderMap}s.
 */
function contextFor(spec: MethodImplSpec, service: DescService, call: AnyCall, shutdown?: AbortSignal): CallContext {
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const timeoutMs = Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : undefined;
  const controller = new AbortController();
  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const end = (reason: unknown) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    shutdown?.removeEventListener("abort", onShutdown);
    controller.abort(reason);
  };
  const onShutdown = () => end(shutdown?.reason);
  if (timeoutMs !== undefined) timer = setTimeout(() => end(deadlineExceeded()), timeoutMs);
  if (shutdown?.aborted) end(shutdown.reason);
  else shutdown?.addEventListener("abort", onShutdown);
  // grpc-js also reports "cancelled" once a call has ended normally (only an earlier one is the client's), and
  // when its own deadline timer, which usually fires before ours, has answered DEADLINE_EXCEEDED.
  (call as NodeJS.EventEmitter).on("cancelled", () => {
    if (!ended) end(Date.now() >= deadlineMs ? deadlineExceeded() : new ConnectError("call cancelled", Code.Canceled));
  });
  return {
    service,
    method: spec.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `/${service.typeName}/${spec.method.name}`,
    timeoutMs: () => (Number.isFinite(deadlineMs) ? (deadlineMs as number) - Date.now() : undefined),
    signal: controller.signal,
    requestHeader: headersFromMetadata(call.metadata),
    responseHeader: new HeaderMap(),
    responseTrailer: new HeaderMap(),
    values: createContextValues().set(kPeerAddress, () => call.getPeer()),
    end,
  };
}

function toStatus(err: unknown) {
  return grpcStatusFromError(ConnectError.from(err, Code.Internal));
}

function handlersFor(spec: ServiceImplSpec, interceptors: readonly Interceptor[], shutdown: AbortSignal) {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of Object.values(spec.methods)) {
    handlers[m.method.localName] = m.kind === "unary"
      ? unaryHandler(m, spec.service, interceptors)
      : streamHandler(m, spec.service, interceptors, shutdown);
  }
  return handlers;
}

function unaryHandler(m: MethodImplSpec & { kind: "unary" }, service: DescService, interceptors: readonly Interceptor[]) {
  return (call: grpc.ServerUnaryCall<MessageShape<DescMessage>, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const ctx = contextFor(m, service, call);
    invokeUnary(m, ctx, call.request, interceptors).then(
      (message) => {
        sendHeader(call, ctx);
        callback(null, message, metadataFromHeaders(ctx.responseTrailer));
      },
      (err: unknown) => callback(toStatus(err)),
    ).finally(() => ctx.end(CALL_ENDED));
  };
}

function streamHandler(
  m: MethodImplSpec & { kind: "server_streaming" | "client_streaming" | "bidi_streaming" },
  service: DescService, interceptors: readonly Interceptor[], shutdown: AbortSignal,
) {
  const clientStreaming = m.kind === "client_streaming";
  return (call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => {
    const ctx = contextFor(m, service, call, shutdown);
    const input = "request" in call && !clientStreaming && m.kind === "server_streaming"
      ? one(call.request as MessageShape<DescMessage>)
      : (call as grpc.ServerReadableStream<MessageShape<DescMessage>, unknown>);
    const run = async () => {
      const output = await invokeStream(m, ctx, input as AsyncIterable<MessageShape<DescMessage>>, interceptors);
      if (clientStreaming && callback) {
        let last: unknown;
        for await (const msg of output) last = msg;
        sendHeader(call, ctx);
        callback(null, last, metadataFromHeaders(ctx.responseTrailer));
        return;
      }
      const writable = call as grpc.ServerWritableStream<unknown, unknown>;
      let headerSent = false;
      for await (const msg of output) {
        if (!headerSent) { sendHeader(call, ctx); headerSent = true; }
        if (!writable.write(msg)) await Promise.race([once(writable, "drain"), once(ctx.signal, "abort")]);
        if (ctx.signal.aborted) break;
      }
      // A stream ended by shutdown tells its client to reconnect elsewhere.
      if (shutdown.aborted) throw shutdown.reason;
      if (!headerSent) sendHeader(call, ctx);
      writable.end(metadataFromHeaders(ctx.responseTrailer));
    };
    run().catch((err: unknown) => {
      const status = toStatus(err);
      if (clientStreaming && callback) callback(status);
      else call.emit("error", status);
    }).finally(() => ctx.end(CALL_ENDED));
  };
}

function sendHeader(call: AnyCall, ctx: HandlerContext): void {
  let any = false;
  ctx.responseHeader.forEach(() => { any = true; });
  if (any) call.sendMetadata(metadataFromHeaders(ctx.responseHeader));
}

async function* one<T>(value: T): AsyncIterable<T> {
  yield value;
}

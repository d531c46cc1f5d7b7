import { once } from "node:events";
import type { DescMessage, DescMethod, DescMethodStreaming, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  Code, ConnectError, createContextValues, type ContextValues, type Interceptor, type StreamRequest,
  type StreamResponse, type Transport, type UnaryRequest, type UnaryResponse,
} from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HeaderMap } from "../header-map.js";
import { createH2UnaryClient } from "./h2-unary.js";
import { applyInterceptors, normalize } from "./invoke.js";
import { deserializer, serializer } from "./server.js";
import { errorFromGrpcStatus, headersFromMetadata, metadataFromHeaders } from "./status.js";
import { createClientTracingInterceptor } from "./tracing.js";

export interface GrpcTransportOptions {
  /** `host:port`, or any grpc-js target such as `dns:///svc.ns.svc:50051`. */
  readonly address: string;
  /** Client interceptors, first outermost. */
  readonly interceptors?: readonly Interceptor[];
  /** Deadline for unary calls that set none; default 10 s. Streams get none by default. */
  readonly defaultTimeoutMs?: number;
  /** Extra grpc-js channel options (keepalive, load balancing policy…). */
  readonly channelOptions?: grpc.ChannelOptions;
  /**
   * Unary calls over a lean `node:http2` client (lib/grpc/h2-unary.ts) instead
   * of grpc-js's call stack; streams stay on grpc-js. Needs a `host:port`
   * address; honours `grpc.max_receive_message_length` and
   * `grpc.max_reconnect_backoff_ms` from `channelOptions`. Default false.
   */
  readonly unaryOverHttp2?: boolean;
}

export interface GrpcTransport extends Transport {
  /** Closes the channel; calls in flight are cancelled. */
  close(): void;
}

/**
 * A Connect `Transport` over one long-lived grpc-js channel, so callers use
 * the generated clients (`createClient(Service, transport)`) while the bytes
 * travel over the measured-fast grpc-js stack. Errors arrive as ConnectError
 * with the trailers as metadata and typed details decoded. Every call gets an
 * OpenTelemetry CLIENT span whose W3C context travels in the metadata
 * (lib/grpc/tracing.ts), on the grpc-js and the `unaryOverHttp2` path alike.
 */
export function createGrpcTransport(opts: GrpcTransportOptions): GrpcTransport {
  const client = new grpc.Client(opts.address, grpc.credentials.createInsecure(), {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    ...opts.channelOptions,
  });
  // Tracing innermost: one CLIENT span per call that reaches the wire, its context injected into the metadata.
  const interceptors = [...(opts.interceptors ?? []), createClientTracingInterceptor(opts.address)];
  const defaultTimeoutMs = opts.defaultTimeoutMs ?? 10_000;
  const h2 = opts.unaryOverHttp2 ? createH2UnaryClient({
    address: opts.address,
    maxReceiveMessageBytes: opts.channelOptions?.["grpc.max_receive_message_length"],
    maxReconnectBackoffMs: opts.channelOptions?.["grpc.max_reconnect_backoff_ms"],
  }) : undefined;
  const unaryCall = h2 ? h2.call : (req: UnaryRequest, deadline: number) => callUnary(client, req, deadline);

  const common = (method: DescMethod, signal: AbortSignal | undefined, header: HeadersInit | undefined,
    contextValues: ContextValues | undefined) => ({
    service: method.parent,
    requestMethod: "POST",
    url: `grpc://${opts.address}/${method.parent.typeName}/${method.name}`,
    signal: signal ?? new AbortController().signal,
    header: new HeaderMap(header),
    contextValues: contextValues ?? createContextValues(),
  });

  return {
    close: () => {
      client.close();
      h2?.close();
    },
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined,
      header: HeadersInit | undefined, input: MessageInitShape<I>, contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const deadline = Date.now() + (timeoutMs ?? defaultTimeoutMs);
      const next = applyInterceptors((req) => unaryCall(req as UnaryRequest, deadline), interceptors);
      const req = { ...common(method, signal, header, contextValues), stream: false, method, message: normalize(method.input, input) };
      return (await next(req as unknown as UnaryRequest)) as unknown as UnaryResponse<I, O>;
    },
    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined,
      header: HeadersInit | undefined, input: AsyncIterable<MessageInitShape<I>>, contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
      const next = applyInterceptors((req) => callStream(client, req as StreamRequest, deadline), interceptors);
      const messages = normalizeAll(method.input, input);
      const req = { ...common(method, signal, header, contextValues), stream: true, method, message: messages };
      return (await next(req as unknown as StreamRequest)) as unknown as StreamResponse<I, O>;
    },
  };
}

/**
 * Runs `f` with V8's stack capture off. grpc-js records `new Error().stack`
 * on every call to decorate a failed call's error with its caller; this
 * transport maps errors from the status instead, and the capture cost ~4 %
 * of the gateway's CPU per request (bench/README.md, Gateway).
 */
function withoutStackCapture<T>(f: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return f();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function pathOf(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function callUnary(client: grpc.Client, req: UnaryRequest, deadline: number): Promise<UnaryResponse> {
  return new Promise((resolve, reject) => {
    if (req.signal.aborted) return reject(ConnectError.from(req.signal.reason, Code.Canceled));
    let header = new Headers();
    let value: unknown;
    const call = withoutStackCapture(() => client.makeUnaryRequest(
      pathOf(req.method), serializer(req.method.input), deserializer(req.method.output), req.message,
      metadataFromHeaders(req.header), { deadline }, (_err, v) => { value = v; },
    ));
    const onAbort = () => call.cancel();
    req.signal.addEventListener("abort", onAbort, { once: true });
    call.on("metadata", (md: grpc.Metadata) => { header = headersFromMetadata(md); });
    call.on("status", (status: grpc.StatusObject) => {
      req.signal.removeEventListener("abort", onAbort);
      if (status.code !== grpc.status.OK) return reject(errorFromGrpcStatus(status));
      resolve({
        stream: false, service: req.service, method: req.method, header,
        trailer: headersFromMetadata(status.metadata), message: value as MessageShape<DescMessage>,
      });
    });
  });
}

async function callStream(client: grpc.Client, req: StreamRequest, deadline: number): Promise<StreamResponse> {
  const { method } = req;
  const path = pathOf(method);
  const ser = serializer(method.input);
  const deser = deserializer(method.output);
  const metadata = metadataFromHeaders(req.header);
  const options = { deadline };
  const trailer = new Headers();
  let call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>;
  let single: Promise<unknown> | undefined;
  if (method.methodKind === "server_streaming") {
    const first = await firstOf(req.message);
    call = client.makeServerStreamRequest(path, ser, deser, first, metadata, options);
  } else if (method.methodKind === "client_streaming") {
    let w!: grpc.ClientWritableStream<MessageShape<DescMessage>>;
    single = new Promise((resolve, reject) => {
      w = client.makeClientStreamRequest(path, ser, deser, metadata, options, (err, v) =>
        err ? reject(errorFromGrpcStatus(err)) : resolve(v));
    });
    single.catch(() => undefined);
    call = w as unknown as grpc.ClientReadableStream<unknown>;
    pump(req.message, w);
  } else {
    const d = client.makeBidiStreamRequest(path, ser, deser, metadata, options);
    call = d;
    pump(req.message, d);
  }
  const onAbort = () => call.cancel();
  req.signal.addEventListener("abort", onAbort, { once: true });
  // Recorded as soon as the call exists: a stream can fail before its first
  // message (even before the reader starts), and the error must still reach it.
  const outcome: { failure?: ConnectError } = {};
  call.on("status", (status: grpc.StatusObject) => {
    req.signal.removeEventListener("abort", onAbort);
    headersFromMetadata(status.metadata).forEach((v, k) => trailer.append(k, v));
    if (status.code !== grpc.status.OK) outcome.failure ??= errorFromGrpcStatus(status);
  });
  call.on("error", (err: unknown) => {
    outcome.failure ??= isServiceError(err) ? errorFromGrpcStatus(err) : ConnectError.from(err);
  });
  const header = await responseHeader(call);
  const message = single ? singleIterable(single) : readAll(call as grpc.ClientReadableStream<unknown>, outcome);
  return { stream: true, service: req.service, method, header, trailer, message: message as AsyncIterable<MessageShape<DescMessage>> };
}

/** Resolves with the response headers, or empty headers if the call ends first (the error surfaces when reading). */
function responseHeader(call: NodeJS.EventEmitter): Promise<Headers> {
  return new Promise((resolve) => {
    call.once("metadata", (md: grpc.Metadata) => resolve(headersFromMetadata(md)));
    call.once("status", () => resolve(new Headers()));
    call.once("error", () => resolve(new Headers()));
  });
}

async function* readAll(call: grpc.ClientReadableStream<unknown>, outcome: { failure?: ConnectError }): AsyncIterable<unknown> {
  try {
    for await (const m of call) yield m;
  } catch (err) {
    throw outcome.failure ?? (isServiceError(err) ? errorFromGrpcStatus(err) : ConnectError.from(err));
  }
  if (outcome.failure) throw outcome.failure;
}

async function* singleIterable(p: Promise<unknown>): AsyncIterable<unknown> {
  yield await p;
}

async function pump(input: AsyncIterable<unknown>, w: grpc.ClientWritableStream<MessageShape<DescMessage>>): Promise<void> {
  try {
    for await (const m of input) {
      if (!w.write(m as MessageShape<DescMessage>)) await once(w, "drain");
    }
    w.end();
  } catch (err) {
    w.cancel();
    void err;
  }
}

async function firstOf<T>(input: AsyncIterable<T>): Promise<T> {
  for await (const m of input) return m;
  throw new ConnectError("missing request message", Code.Internal);
}

async function* normalizeAll<I extends DescMessage>(desc: I, input: AsyncIterable<MessageInitShape<I>>) {
  for await (const m of input) yield normalize(desc, m);
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && "code" in err && "metadata" in err;
}

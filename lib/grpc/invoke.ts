import { create, isMessage, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type {
  HandlerContext, Interceptor, MethodImplSpec, StreamRequest, StreamResponse, UnaryRequest, UnaryResponse,
} from "@connectrpc/connect";

type AnyFn = (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>;

/** Wraps `next` so the first interceptor runs outermost, as Connect does. */
export function applyInterceptors<T extends AnyFn>(next: T, interceptors: readonly Interceptor[]): AnyFn {
  return interceptors.reduceRight<AnyFn>((n, interceptor) => interceptor(n), next);
}

/** Accepts a message or its init shape, as handlers may return either. */
export function normalize<D extends DescMessage>(desc: D, value: unknown): MessageShape<D> {
  return isMessage(value, desc) ? value : create(desc, value as never);
}

/**
 * Runs a unary implementation behind the server interceptors, exactly as a
 * Connect router would, so one `ServiceImpl` and one interceptor list serve
 * gRPC (grpc-js) and the in-memory router used in tests alike.
 */
export async function invokeUnary(
  spec: MethodImplSpec & { kind: "unary" },
  ctx: HandlerContext,
  input: MessageShape<DescMessage>,
  interceptors: readonly Interceptor[],
): Promise<MessageShape<DescMessage>> {
  const next = applyInterceptors(async (req) => {
    const output = await spec.impl(req.message as never, ctx);
    return { ...common(ctx), stream: false, method: spec.method, message: normalize(spec.method.output, output) };
  }, interceptors);
  const res = await next({
    ...requestCommon(ctx), stream: false, method: spec.method, message: input,
  } as UnaryRequest);
  return res.message as MessageShape<DescMessage>;
}

/**
 * Runs a streaming implementation (server, client or bidi) behind the server
 * interceptors. `input` yields the request messages; the result yields the
 * response messages.
 */
export async function invokeStream(
  spec: MethodImplSpec & { kind: "server_streaming" | "client_streaming" | "bidi_streaming" },
  ctx: HandlerContext,
  input: AsyncIterable<MessageShape<DescMessage>>,
  interceptors: readonly Interceptor[],
): Promise<AsyncIterable<MessageShape<DescMessage>>> {
  const next = applyInterceptors(async (req) => {
    const messages = req.message as AsyncIterable<MessageShape<DescMessage>>;
    return { ...common(ctx), stream: true, method: spec.method, message: run(spec, ctx, messages) };
  }, interceptors);
  const res = await next({
    ...requestCommon(ctx), stream: true, method: spec.method, message: input,
  } as StreamRequest);
  return res.message as AsyncIterable<MessageShape<DescMessage>>;
}

async function* run(
  spec: MethodImplSpec & { kind: "server_streaming" | "client_streaming" | "bidi_streaming" },
  ctx: HandlerContext,
  input: AsyncIterable<MessageShape<DescMessage>>,
): AsyncIterable<MessageShape<DescMessage>> {
  const out = spec.method.output;
  switch (spec.kind) {
    case "server_streaming": {
      const request = await single(input);
      for await (const m of spec.impl(request as never, ctx)) yield normalize(out, m);
      return;
    }
    case "client_streaming":
      yield normalize(out, await spec.impl(input as never, ctx));
      return;
    case "bidi_streaming":
      for await (const m of spec.impl(input as never, ctx)) yield normalize(out, m);
  }
}

async function single<T>(input: AsyncIterable<T>): Promise<T> {
  for await (const m of input) return m;
  throw new Error("missing request message");
}

function requestCommon(ctx: HandlerContext) {
  return {
    service: ctx.service, requestMethod: ctx.requestMethod, url: ctx.url, signal: ctx.signal,
    header: ctx.requestHeader, contextValues: ctx.values,
  };
}

function common(ctx: HandlerContext) {
  return { service: ctx.service, header: ctx.responseHeader, trailer: ctx.responseTrailer };
}

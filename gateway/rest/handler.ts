import type { DescMethodStreaming, DescMethodUnary, Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Cluster } from "../clusters/cluster.js";
import { errorEnvelope } from "../error-envelope.js";
import type { AnyRequest, AnyResponse } from "../server/listener.js";
import { canonicalPath, type CanonicalPath } from "../transcoding/path.js";
import { buildRequest } from "../transcoding/request.js";
import { renderResponse, successStatus } from "../transcoding/response.js";
import type { RouteMatch, Router } from "../transcoding/router.js";
import { httpStatusOverride, parseJsonBody, readBody } from "./body.js";
import { streamContentType, streamFormatOf, writeStream } from "./stream.js";

/** What the REST handler needs; built once at startup. */
export interface RestHandlerDeps {
  readonly router: Router;
  /** The cluster serving each service, by full service name. */
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  /** Deadline of unary upstream calls (a client's shorter `grpc-timeout` is not a REST notion). */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

/** One REST exchange as the filters see it. */
export interface RestExchange {
  readonly requestId: string;
  readonly canonical: CanonicalPath;
  readonly match: RouteMatch;
  /** Metadata sent upstream (request id, identity, trace context). */
  readonly upstreamHeaders: Headers;
  /** Headers added to the reply (rate-limit, cache, request id). */
  readonly responseHeaders: Headers;
  readonly signal: AbortSignal;
}

/**
 * Runs before the upstream call: may add upstream and response headers, or
 * throw a ConnectError to refuse the request (rendered as the envelope).
 */
export type RestFilter = (req: AnyRequest, ex: RestExchange) => Promise<void> | void;

/**
 * REST/JSON → gRPC: canonical path, route (404, 405 with Allow), body (413,
 * malformed JSON and nesting limits → 400), request message from the
 * google.api.http rule, filters, the upstream call through the owning
 * cluster, and the proto3 JSON answer with the method's success status —
 * or, for server streams, SSE or NDJSON. Every failure is the one JSON
 * envelope with the request id; upstream error details survive.
 */
export function createRestHandler(deps: RestHandlerDeps, filters: readonly RestFilter[]) {
  return async function handle(req: AnyRequest, res: AnyResponse, requestId: string, responseHeaders: Headers): Promise<void> {
    const fail = (err: unknown) => sendError(res, err, requestId, responseHeaders);
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const canonical = canonicalPath(q < 0 ? url : url.slice(0, q));
    if (canonical.kind === "rejected") return fail(new ConnectError(canonical.message, Code.InvalidArgument));
    const match = deps.router.match(req.method ?? "GET", canonical);
    if (!match) return fail(new ConnectError(`no route for ${req.method} ${canonical.path}`, Code.NotFound));
    if (match.kind === "method_not_allowed") {
      responseHeaders.set("allow", match.allowed.join(", "));
      return fail(Object.assign(new ConnectError(`${req.method} is not allowed on ${canonical.path}`, Code.FailedPrecondition), { httpStatus: 405, errorName: "METHOD_NOT_ALLOWED" }));
    }
    const controller = new AbortController();
    res.once("close", () => controller.abort(new ConnectError("client went away", Code.Canceled)));
    const ex: RestExchange = {
      requestId, canonical, match, responseHeaders, signal: controller.signal,
      upstreamHeaders: new Headers({ "x-request-id": requestId }),
    };
    try {
      const raw = await readBody(req, deps.maxBodyBytes);
      const body = parseJsonBody(raw, deps.maxJsonDepth);
      const input = buildRequest(match.binding, { vars: match.vars, query: new URLSearchParams(q < 0 ? "" : url.slice(q + 1)), body });
      for (const f of filters) await f(req, ex);
      await callUpstream(deps, req, res, ex, input);
    } catch (err) {
      if (res.headersSent) return void res.end();
      fail(err);
    }
  };
}

async function callUpstream(deps: RestHandlerDeps, req: AnyRequest, res: AnyResponse, ex: RestExchange, input: Message): Promise<void> {
  const { binding } = ex.match;
  const cluster = deps.clusters.get(binding.service.typeName);
  if (!cluster) throw new ConnectError(`no cluster serves ${binding.service.typeName}`, Code.Unavailable);
  const method = binding.method;
  if (method.methodKind === "unary") {
    const reply = await cluster.transport.unary(method as DescMethodUnary, ex.signal, deps.timeoutMs, ex.upstreamHeaders, input);
    sendJson(res, successStatus(method), renderResponse(binding, reply.message), ex.responseHeaders);
    return;
  }
  if (method.methodKind !== "server_streaming") throw new ConnectError(`${method.name} is not reachable over REST`, Code.Unimplemented);
  const reply = await cluster.transport.stream(method as DescMethodStreaming, ex.signal, undefined, ex.upstreamHeaders, oneMessage(input));
  const format = streamFormatOf(req);
  ex.responseHeaders.set("content-type", streamContentType[format]);
  ex.responseHeaders.set("cache-control", "no-cache");
  writeHead(res, 200, ex.responseHeaders);
  (res as { flushHeaders?: () => void }).flushHeaders?.();
  await writeStream(res, format, render(reply.message, (m) => renderResponse(binding, m)),
    (err) => errorEnvelope(err, ex.requestId));
}

async function* oneMessage(m: Message): AsyncIterable<Message> {
  yield m;
}

async function* render<T, R>(messages: AsyncIterable<T>, f: (m: T) => R): AsyncIterable<R> {
  for await (const m of messages) yield f(m);
}

/** Writes a JSON reply with the exchange's headers. */
export function sendJson(res: AnyResponse, status: number, body: unknown, headers: Headers): void {
  const text = JSON.stringify(body);
  headers.set("content-type", "application/json; charset=utf-8");
  headers.set("content-length", String(Buffer.byteLength(text)));
  writeHead(res, status, headers);
  res.end(text);
}

/** Writes the error envelope for anything thrown (HTTP status from the code table, or a body error's 413/405). */
export function sendError(res: AnyResponse, err: unknown, requestId: string, headers: Headers): void {
  const envelope = errorEnvelope(err, requestId);
  const override = httpStatusOverride(err);
  if (override) envelope.statusCode = override;
  const name = (err as { errorName?: string } | undefined)?.errorName;
  if (name) envelope.error = name;
  if (override === 413) envelope.error = "PAYLOAD_TOO_LARGE";
  if (res.headersSent) return void res.end();
  sendJson(res, envelope.statusCode, envelope, headers);
}

function writeHead(res: AnyResponse, status: number, headers: Headers): void {
  (res as { writeHead(status: number, headers: Record<string, string>): void }).writeHead(status, Object.fromEntries(headers));
}

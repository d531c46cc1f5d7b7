import type { DescMethodStreaming, DescMethodUnary, Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Cluster } from "../clusters/cluster.js";
import { errorEnvelope, methodNotAllowed } from "../error-envelope.js";
import type { Admission, Admitted } from "../filters/admission.js";
import type { CachedReply, ResponseCache } from "../filters/cache.js";
import { remoteAddressOf, type AnyRequest, type AnyResponse } from "../server/listener.js";
import { canonicalPath, type CanonicalPath } from "../transcoding/path.js";
import { buildRequest } from "../transcoding/request.js";
import { renderResponse, successStatus } from "../transcoding/response.js";
import type { RouteMatch, Router } from "../transcoding/router.js";
import { deadlineFor } from "../clusters/deadline.js";
import { HeaderMap } from "../../lib/header-map.js";
import { traced } from "../tracing.js";
import { parseJsonBody, readBody } from "./body.js";
import { streamContentType, streamFormatOf, writeStream } from "./stream.js";

/** What the REST handler needs; built once at startup. */
export interface RestHandlerDeps {
  readonly router: Router;
  /** The cluster serving each service, by full service name. */
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  /** Deadline of a unary upstream call to a service (its cluster's request timeout); a client's shorter `grpc-timeout` header shortens it. */
  readonly timeoutMs: (service: string) => number;
  readonly logger: Logger;
  /** Authentication, access and rate limit. */
  readonly admit: Admission;
  readonly cache?: ResponseCache | undefined;
  /** Header carrying API keys (lower case). */
  readonly apiKeyHeader: string;
  /** Aborted when the gateway stops: open streams then end with UNAVAILABLE so clients reconnect elsewhere. */
  readonly shutdown?: AbortSignal;
  /** The error for a request no route matches; default NOT_FOUND (a schema still loading answers UNAVAILABLE). */
  readonly noRoute?: (verb: string, path: string) => ConnectError;
}

/** What the REST handler learnt about one request, for metrics and the access log. */
export interface ExchangeInfo {
  route?: string;
  /** The cluster that served it. */
  upstream?: string | undefined;
  caller?: Admitted;
  /** The error envelope's `error`, when it failed. */
  errorCode?: string;
}

/** One REST exchange after routing. */
export interface RestExchange {
  readonly requestId: string;
  readonly canonical: CanonicalPath;
  readonly match: RouteMatch;
  /** Metadata sent upstream (request id, identity, trace context). */
  readonly upstreamHeaders: Headers;
  /** Headers added to the reply (rate-limit, cache, request id). */
  readonly responseHeaders: Headers;
  readonly signal: AbortSignal;
  /** The client's `grpc-timeout` header, if any. */
  readonly grpcTimeout?: string | undefined;
}

/**
 * REST/JSON → gRPC: canonical path, route (404, 405 with Allow), body (413,
 * malformed JSON and nesting limits → 400), request message from the
 * google.api.http rule, admission (authentication, access, rate limit), the
 * response cache for GET routes with a TTL, the upstream call through the
 * owning cluster, and the proto3 JSON answer with the method's success
 * status — or, for server streams, SSE or NDJSON. Every failure is the one JSON
 * envelope with the request id; upstream error details survive.
 */
export function createRestHandler(deps: RestHandlerDeps) {
  /** Fills `info` (route template, upstream, caller, error) for metrics and the access log. */
  return async function handle(req: AnyRequest, res: AnyResponse, requestId: string, responseHeaders: Headers, info: ExchangeInfo = {}): Promise<void> {
    const fail = (err: unknown) => { info.errorCode = sendError(res, err, requestId, responseHeaders); };
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const canonical = canonicalPath(q < 0 ? url : url.slice(0, q));
    if (canonical.kind === "rejected") return fail(new ConnectError(canonical.message, Code.InvalidArgument));
    const match = deps.router.match(req.method ?? "GET", canonical);
    if (!match) return fail(deps.noRoute?.(req.method ?? "GET", canonical.path) ?? new ConnectError(`no route for ${req.method} ${canonical.path}`, Code.NotFound));
    if (match.kind === "method_not_allowed") {
      responseHeaders.set("allow", match.allowed.join(", "));
      return fail(methodNotAllowed(req.method, canonical.path));
    }
    info.route = match.binding.template.source;
    info.upstream = deps.clusters.get(match.binding.service.typeName)?.name;
    const controller = new AbortController();
    // "close" also follows every completed reply: only a reply cut short means the client went away.
    res.once("close", () => { if (!res.writableFinished) controller.abort(new ConnectError("client went away", Code.Canceled)); });
    const ex: RestExchange = {
      requestId, canonical, match, responseHeaders, signal: controller.signal, grpcTimeout: headerValue(req.headers["grpc-timeout"]),
      upstreamHeaders: new HeaderMap({ "x-request-id": requestId }),
    };
    try {
      const raw = await readBody(req, deps.maxBodyBytes);
      const body = parseJsonBody(raw, deps.maxJsonDepth);
      const query = new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
      const headers = headersOf(req);
      if (match.binding.method.methodKind === "server_streaming") streamCredentials(query, headers, deps.apiKeyHeader);
      const input = buildRequest(match.binding, { vars: match.vars, query, body });
      const caller = await deps.admit({
        method: match.binding.method, headers, remoteAddress: remoteAddressOf(req),
        upstreamHeaders: ex.upstreamHeaders, responseHeaders, route: { verb: match.binding.verb, template: match.binding.template.source },
      });
      info.caller = caller;
      const configured = caller.overrides?.cacheTtlSeconds;
      const ttl = match.binding.verb !== "GET" || match.binding.method.methodKind !== "unary" ? 0 : configured !== undefined ? configured * 1000 : deps.cache?.ttlMs(match.binding) ?? 0;
      if (deps.cache && ttl > 0) return await cached(deps, deps.cache, res, ex, input, { ttl, query, caller, noCache: /no-cache|no-store/i.test(String(req.headers["cache-control"] ?? "")) });
      const status = await callUpstream(deps, req, res, ex, input);
      if (deps.cache && match.binding.verb !== "GET" && status >= 200 && status < 300) await deps.cache.invalidate(deps.cache.tagOf(canonical, caller));
    } catch (err) {
      fail(err);
    }
  };
}

/** A GET with a TTL: HIT from the cache, else one upstream call per key (concurrent misses share it), stored when 2xx. */
async function cached(deps: RestHandlerDeps, cache: ResponseCache, res: AnyResponse, ex: RestExchange, input: Message,
  o: { ttl: number; query: URLSearchParams; caller: Admitted; noCache: boolean }): Promise<void> {
  const key = cache.keyOf(ex.match.binding, ex.canonical, o.query, o.caller);
  const hit = o.noCache ? undefined : await traced("cache", () => cache.get(key));
  if (hit) {
    ex.responseHeaders.set("x-cache", "HIT");
    return sendText(res, hit.status, hit.body, ex.responseHeaders);
  }
  const fill = async (): Promise<CachedReply> => {
    const reply = { status: successStatus(ex.match.binding.method), body: JSON.stringify(renderResponse(ex.match.binding, await unary(deps, ex, input))) };
    await cache.put(key, reply, o.ttl, cache.tagOf(ex.canonical, o.caller));
    return reply;
  };
  ex.responseHeaders.set("x-cache", o.noCache ? "BYPASS" : "MISS"); // on errors too: the route is cacheable
  const { reply } = o.noCache ? { reply: await fill() } : await cache.coalesce(key, fill);
  sendText(res, reply.status, reply.body, ex.responseHeaders);
}

async function unary(deps: RestHandlerDeps, ex: RestExchange, input: Message): Promise<Message> {
  const { binding } = ex.match;
  const cluster = deps.clusters.get(binding.service.typeName);
  if (!cluster) throw new ConnectError(`no cluster serves ${binding.service.typeName}`, Code.Unavailable);
  const timeout = deadlineFor(deps.timeoutMs(binding.service.typeName), ex.grpcTimeout);
  return (await cluster.transport.unary(binding.method as DescMethodUnary, ex.signal, timeout, ex.upstreamHeaders, input)).message;
}

/** Calls upstream and writes the reply; answers the status sent. */
async function callUpstream(deps: RestHandlerDeps, req: AnyRequest, res: AnyResponse, ex: RestExchange, input: Message): Promise<number> {
  const { binding } = ex.match;
  const method = binding.method;
  if (method.methodKind === "unary") {
    const status = successStatus(method);
    sendJson(res, status, renderResponse(binding, await unary(deps, ex, input)), ex.responseHeaders);
    return status;
  }
  const cluster = deps.clusters.get(binding.service.typeName);
  if (!cluster) throw new ConnectError(`no cluster serves ${binding.service.typeName}`, Code.Unavailable);
  if (method.methodKind !== "server_streaming") throw new ConnectError(`${method.name} is not reachable over REST`, Code.Unimplemented);
  const signal = deps.shutdown ? AbortSignal.any([ex.signal, deps.shutdown]) : ex.signal;
  const opened = cluster.transport.stream(method as DescMethodStreaming, signal, undefined, ex.upstreamHeaders, oneMessage(input));
  opened.catch(() => undefined);
  // A stream that fails at once (bad input, no access) answers with its proper status; one that is
  // still quiet after STREAM_OPEN_WAIT_MS gets its 200 head now, so clients (EventSource) see it open.
  const early = await Promise.race([opened.then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), STREAM_OPEN_WAIT_MS).unref())]);
  let messages: AsyncIterable<Message>;
  if (early) {
    const it = (await opened).message[Symbol.asyncIterator]();
    const first = await Promise.race([it.next(), new Promise<undefined>((r) => setTimeout(() => r(undefined), STREAM_OPEN_WAIT_MS).unref())]);
    messages = resumed(first, it);
  } else {
    messages = (async function* () { yield* (await opened).message; })();
  }
  const format = streamFormatOf(req);
  ex.responseHeaders.set("content-type", streamContentType[format]);
  ex.responseHeaders.set("cache-control", "no-cache");
  writeHead(res, 200, ex.responseHeaders);
  (res as { flushHeaders?: () => void }).flushHeaders?.();
  // A stream ended by the gateway's shutdown tells its client to reconnect (UNAVAILABLE), not that it was cancelled.
  await writeStream(res, format, render(messages, (m) => renderResponse(binding, m)),
    (err) => errorEnvelope(deps.shutdown?.aborted ? deps.shutdown.reason : err, ex.requestId));
  return 200;
}

/** How long a REST stream waits for its upstream to answer or fail before sending its 200 head. */
const STREAM_OPEN_WAIT_MS = 150;

/** The stream again from an already awaited first result (undefined: not yet known). */
async function* resumed<T>(first: IteratorResult<T> | undefined, it: AsyncIterator<T>): AsyncIterable<T> {
  let r = first ?? await it.next();
  while (!r.done) {
    yield r.value;
    r = await it.next();
  }
}

async function* oneMessage(m: Message): AsyncIterable<Message> {
  yield m;
}

async function* render<T, R>(messages: AsyncIterable<T>, f: (m: T) => R): AsyncIterable<R> {
  for await (const m of messages) yield f(m);
}

/** Writes a JSON reply with the exchange's headers. */
export function sendJson(res: AnyResponse, status: number, body: unknown, headers: Headers): void {
  sendText(res, status, JSON.stringify(body), headers);
}

function sendText(res: AnyResponse, status: number, text: string, headers: Headers): void {
  headers.set("content-type", "application/json; charset=utf-8");
  headers.set("content-length", String(Buffer.byteLength(text)));
  writeHead(res, status, headers);
  res.end(text);
}

/** Writes the error envelope for anything thrown; answers its `error`. */
export function sendError(res: AnyResponse, err: unknown, requestId: string, headers: Headers): string {
  const envelope = errorEnvelope(err, requestId);
  if (res.headersSent) res.end();
  else sendJson(res, envelope.statusCode, envelope, headers);
  return envelope.error;
}

/**
 * Browsers' EventSource cannot send headers, so a server stream also takes
 * its credentials from the query: `access_token` (a bearer token) or
 * `api_key`. They are removed before transcoding and never logged (the
 * access log records the path without its query); headers win when both
 * are sent.
 */
function streamCredentials(query: URLSearchParams, headers: Headers, apiKeyHeader: string): void {
  const token = query.get("access_token");
  const key = query.get("api_key");
  query.delete("access_token");
  query.delete("api_key");
  if (token && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
  if (key && !headers.has(apiKeyHeader)) headers.set(apiKeyHeader, key);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The request's headers as Fetch Headers (HTTP/2 pseudo-headers left out), made once per request. */
export function headersOf(req: AnyRequest): Headers {
  let headers = views.get(req);
  if (!headers) views.set(req, headers = HeaderMap.fromIncoming(req.headers));
  return headers;
}

const views = new WeakMap<AnyRequest, Headers>();

function writeHead(res: AnyResponse, status: number, headers: Headers): void {
  const record = headers instanceof HeaderMap ? headers.toRecord() : Object.fromEntries(headers);
  (res as { writeHead(status: number, headers: Record<string, string | string[]>): void }).writeHead(status, record);
}

import http2 from "node:http2";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { HeaderMap } from "../header-map.js";
import { errorFromWire, RESERVED_HEADERS, STATUS_DETAILS_KEY } from "./status.js";

export interface H2UnaryOptions {
  /** `host:port` or `[v6]:port` (a `dns:///` prefix is accepted and dropped). */
  readonly address: string;
  /** Largest response message accepted; default 4 MiB (grpc-js's default; -1: no limit), beyond: RESOURCE_EXHAUSTED. */
  readonly maxReceiveMessageBytes?: number;
  /** Longest wait between connection attempts after failed ones; default 2 s (first wait 100 ms, doubling). */
  readonly maxReconnectBackoffMs?: number;
  /** HTTP/2 PING interval of an open session (0: none); default 30 s. A PING unanswered for 10 s drops the session. */
  readonly keepaliveMs?: number;
}

export interface H2UnaryClient {
  /** Runs one unary call; settles with the response or a ConnectError (never hangs past `deadline`, epoch ms). */
  call(req: UnaryRequest, deadline: number): Promise<UnaryResponse>;
  /** Closes the session; calls in flight fail UNAVAILABLE. */
  close(): void;
}

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY,
  NGHTTP2_FLAG_END_STREAM } = http2.constants;

/**
 * A lean unary gRPC client over one long-lived `node:http2` session, for the
 * hot unary hops where grpc-js's call machinery (filters, metadata objects,
 * resolver and picker) cost ~15 % of the gateway's CPU (bench/README.md,
 * Gateway). Semantics follow grpc-js's unary calls: spec status mapping
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md), errors
 * via `errorFromWire` with trailers as metadata and typed details. The
 * session reconnects lazily; after a failed connection attempt calls fail
 * UNAVAILABLE at once until the backoff has passed (grpc-js's
 * TRANSIENT_FAILURE), so a dead endpoint costs one attempt per backoff.
 */
export function createH2UnaryClient(opts: H2UnaryOptions): H2UnaryClient {
  const address = opts.address.replace(/^dns:\/\/\//, "");
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):\d+$/.test(address)) throw new Error(`unaryOverHttp2 needs a host:port address, not ${opts.address}`);
  const authority = `http://${address}`;
  const maxReceive = opts.maxReceiveMessageBytes === undefined ? 4 * 1024 * 1024 : opts.maxReceiveMessageBytes < 0 ? Infinity : opts.maxReceiveMessageBytes;
  const maxBackoff = opts.maxReconnectBackoffMs ?? 2_000;
  const keepaliveMs = opts.keepaliveMs ?? 30_000;
  let session: http2.ClientHttp2Session | undefined;
  let failedAttempts = 0;
  let retryAt = 0;
  let lastError = "";
  let closed = false;

  function connect(): http2.ClientHttp2Session {
    const s = http2.connect(authority, { settings: { enablePush: false } });
    let connected = false;
    const keepalive = keepaliveMs > 0 ? setInterval(() => ping(s), keepaliveMs) : undefined;
    keepalive?.unref();
    s.once("connect", () => {
      connected = true;
      failedAttempts = 0;
    });
    s.on("error", (err: Error) => void (lastError = err.message));
    // After a GOAWAY the calls in flight finish on it; new ones open a new session.
    s.once("goaway", () => void (session === s && (session = undefined)));
    s.once("close", () => {
      clearInterval(keepalive);
      if (session === s) session = undefined;
      if (connected) return;
      failedAttempts++;
      retryAt = Date.now() + Math.min(maxBackoff, 100 * 2 ** (failedAttempts - 1));
    });
    s.unref();
    return s;
  }

  /** The open session, a new one, or UNAVAILABLE while backing off after failed attempts. */
  function current(): http2.ClientHttp2Session | ConnectError {
    if (closed) return statusError(Code.Unavailable, "transport closed");
    if (session && !session.closed && !session.destroyed) return session;
    if (failedAttempts > 0 && Date.now() < retryAt) return statusError(Code.Unavailable, `connection to ${address} failed: ${lastError}`);
    return (session = connect());
  }

  return {
    call(req, deadline) {
      return new Promise((resolve, reject) => {
        if (req.signal.aborted) return reject(ConnectError.from(req.signal.reason, Code.Canceled));
        const timeout = deadline - Date.now();
        if (timeout <= 0) return reject(statusError(Code.DeadlineExceeded, "Deadline exceeded"));
        const s = current();
        if (s instanceof ConnectError) return reject(s);
        runCall(s, req, timeout, maxReceive, resolve, reject);
      });
    },
    close() {
      closed = true;
      session?.destroy();
      session = undefined;
    },
  };
}

/** Sends a PING; an answer not back within 10 s (or an error) drops the session, failing its calls UNAVAILABLE. */
function ping(s: http2.ClientHttp2Session): void {
  if (s.closed || s.destroyed) return;
  const t = setTimeout(() => s.destroy(), 10_000);
  t.unref();
  s.ping((err) => {
    clearTimeout(t);
    if (err && !s.destroyed) s.destroy();
  });
}

/** One call's stream: request out, reply collected, settled once (status, stream failure, deadline or abort). */
function runCall(s: http2.ClientHttp2Session, req: UnaryRequest, timeout: number, maxReceive: number,
  resolve: (res: UnaryResponse) => void, reject: (err: unknown) => void): void {
  let stream: http2.ClientHttp2Stream;
  try {
    stream = s.request(requestHeaders(req, timeout), { endStream: false });
  } catch (err) {
    // A closing session is the endpoint's fault; anything else (an invalid header) is ours.
    return reject(statusError(s.closed || s.destroyed ? Code.Unavailable : Code.Internal, `cannot start the call: ${String(err)}`));
  }
  let settled = false;
  const settle = (result: UnaryResponse | ConnectError) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    req.signal.removeEventListener("abort", onAbort);
    if (!(result instanceof ConnectError)) return resolve(result);
    reject(result);
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
  };
  const timer = setTimeout(() => settle(statusError(Code.DeadlineExceeded, "Deadline exceeded")), timeout);
  const onAbort = () => settle(statusError(Code.Canceled, "Cancelled on client"));
  req.signal.addEventListener("abort", onAbort, { once: true });
  const reply = collect(stream, maxReceive, settle);
  stream.on("close", () => {
    if (!settled) settle(outcome(req, reply, stream, s));
  });
  stream.end(frame(toBinary(req.method.input, req.message)));
}

/** What a stream answered so far. */
interface Reply {
  httpStatus: number;
  header: Headers;
  trailers: http2.IncomingHttpHeaders | undefined;
  error: Error | undefined;
  readonly chunks: Buffer[];
  received: number;
}

/** Records the stream's reply; a message announced larger than `maxReceive` fails the call at once. */
function collect(stream: http2.ClientHttp2Stream, maxReceive: number, fail: (err: ConnectError) => void): Reply {
  const reply: Reply = { httpStatus: 0, header: new HeaderMap(), trailers: undefined, error: undefined, chunks: [], received: 0 };
  stream.on("response", (headers, flags) => {
    reply.httpStatus = Number(headers[":status"]);
    if (flags & NGHTTP2_FLAG_END_STREAM) reply.trailers = headers; // trailers-only
    else reply.header = toHeaders(headers, responseHeaderSkip);
  });
  stream.on("trailers", (headers) => void (reply.trailers = headers));
  stream.on("error", (err) => void (reply.error = err));
  stream.on("data", (chunk: Buffer) => {
    const before = reply.received;
    reply.chunks.push(chunk);
    reply.received += chunk.length;
    // The length prefix is checked once, when complete; a second message is refused before it piles up.
    if (before < 5 && reply.received >= 5) {
      const length = (reply.chunks.length === 1 ? chunk : Buffer.concat(reply.chunks)).readUInt32BE(1);
      if (length > maxReceive) {
        fail(reply.httpStatus !== 200 ? httpStatusError(reply.httpStatus)
          : statusError(Code.ResourceExhausted, `Received message larger than max (${length} vs. ${maxReceive})`));
      }
    } else if (reply.received > maxReceive + 10) {
      fail(statusError(Code.Unimplemented, "Too many responses received"));
    }
  });
  return reply;
}

/** The call's result once its stream closed. */
function outcome(req: UnaryRequest, reply: Reply, stream: http2.ClientHttp2Stream, s: http2.ClientHttp2Session): UnaryResponse | ConnectError {
  if (reply.trailers === undefined) return streamFailure(stream, s, reply.error, reply.httpStatus);
  const failure = statusFromTrailers(reply.trailers, reply.httpStatus);
  if (failure) return failure;
  const message = decodeMessage(req.method.output, reply.chunks, reply.received);
  if (message instanceof ConnectError) return message;
  return {
    stream: false, service: req.service, method: req.method, header: reply.header,
    trailer: toHeaders(reply.trailers, trailerSkip), message,
  };
}

/** Request headers: the fixed gRPC ones, the deadline in spec units, the metadata (`metadataFromHeaders` semantics). */
function requestHeaders(req: UnaryRequest, timeoutMs: number): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = {
    ":method": "POST", ":path": `/${req.method.parent.typeName}/${req.method.name}`,
    "content-type": "application/grpc", "te": "trailers", "grpc-timeout": grpcTimeout(timeoutMs),
  };
  req.header.forEach((value, key) => {
    if (RESERVED_HEADERS.has(key)) return;
    // `-bin` values travel as base64; decoding and re-encoding each one normalizes them as grpc-js does.
    h[key] = key.endsWith("-bin") ? value.split(",").map((p) => Buffer.from(p.trim(), "base64").toString("base64")) : value;
  });
  return h;
}

/** `grpc-timeout` as grpc-js writes it: the smallest unit whose amount stays below 10^8, rounded up. */
function grpcTimeout(ms: number): string {
  for (const [unit, factor] of timeoutUnits) {
    const amount = ms / factor;
    if (amount < 1e8) return `${Math.ceil(amount)}${unit}`;
  }
  return "99999999H";
}
const timeoutUnits = [["m", 1], ["S", 1_000], ["M", 60_000], ["H", 3_600_000]] as const;

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The single response message, or the status grpc-js gives when there is none, more than one, or it does not parse. */
function decodeMessage(desc: DescMessage, chunks: Buffer[], received: number): MessageShape<DescMessage> | ConnectError {
  if (received === 0) return statusError(Code.Unimplemented, "No message received");
  const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
  const length = received >= 5 ? data.readUInt32BE(1) : -1;
  if (length < 0 || received < 5 + length) return statusError(Code.Internal, "Incomplete response message");
  if (received > 5 + length) return statusError(Code.Unimplemented, "Too many responses received");
  if (data[0] !== 0) return statusError(Code.Internal, "Compressed response message not supported");
  try {
    return fromBinary(desc, data.subarray(5, 5 + length));
  } catch (err) {
    return statusError(Code.Internal, `Response message parsing error: ${String(err)}`);
  }
}

/** The call's failure per its trailers (undefined: OK): grpc-status, else the HTTP status mapping. */
function statusFromTrailers(trailers: http2.IncomingHttpHeaders, httpStatus: number): ConnectError | undefined {
  const raw = trailers["grpc-status"];
  if (httpStatus !== 200) {
    const mapped = httpStatusError(httpStatus);
    if (mapped.code !== Code.Unknown || raw === undefined) return mapped;
  }
  if (raw === undefined) return statusError(Code.Internal, "No status information received");
  const code = Number(raw);
  if (code === 0) return undefined;
  const details = trailers[STATUS_DETAILS_KEY];
  const bin = typeof details === "string" ? Buffer.from(details, "base64") : undefined;
  return errorFromWire(code, decodeGrpcMessage(trailers["grpc-message"]), toHeaders(trailers, trailerSkip), bin);
}

/** `grpc-message` is percent-encoded UTF-8 (spec); a value that does not decode is kept as it came. */
function decodeGrpcMessage(value: string | string[] | undefined): string {
  const s = Array.isArray(value) ? value.join(",") : value ?? "";
  if (!s.includes("%")) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The spec's mapping of an HTTP status to a gRPC code, with grpc-js's message. */
function httpStatusError(status: number): ConnectError {
  const code = httpCodes[status] ?? Code.Unknown;
  return statusError(code, `Received HTTP status code ${status}`);
}
const httpCodes: Readonly<Record<number, Code>> = {
  400: Code.Internal, 401: Code.Unauthenticated, 403: Code.PermissionDenied, 404: Code.Unimplemented,
  429: Code.Unavailable, 502: Code.Unavailable, 503: Code.Unavailable, 504: Code.Unavailable,
};

/** A stream that closed without trailers: a dropped connection is UNAVAILABLE, else grpc-js's RST_STREAM mapping. */
function streamFailure(stream: http2.ClientHttp2Stream, s: http2.ClientHttp2Session, err: Error | undefined, httpStatus: number): ConnectError {
  const cause = err && "cause" in err && err.cause instanceof Error ? err.cause : err;
  const why = cause ? `: ${cause.message}` : "";
  if (s.destroyed || s.closed || (cause && cause !== err)) return statusError(Code.Unavailable, `Connection dropped${why}`);
  switch (stream.rstCode) {
    case NGHTTP2_NO_ERROR:
      return httpStatus !== 0 && httpStatus !== 200 ? httpStatusError(httpStatus)
        : statusError(Code.Internal, "Received RST_STREAM with code 0 (Call ended without gRPC status)");
    case NGHTTP2_REFUSED_STREAM: return statusError(Code.Unavailable, "Stream refused by server");
    case NGHTTP2_CANCEL: return statusError(Code.Canceled, "Call cancelled");
    case NGHTTP2_ENHANCE_YOUR_CALM: return statusError(Code.ResourceExhausted, "Bandwidth exhausted or memory limit exceeded");
    case NGHTTP2_INADEQUATE_SECURITY: return statusError(Code.PermissionDenied, "Protocol not secure enough");
    default: return statusError(Code.Internal, `Received RST_STREAM with code ${stream.rstCode}${why}`);
  }
}

/** A status made on this side: a wire-shaped error with no metadata, as grpc-js reports its own statuses. */
function statusError(code: Code, message: string): ConnectError {
  return errorFromWire(code, message, new Headers(), undefined);
}

/** Incoming headers as Fetch `Headers`, pseudo-headers and `skip` left out; `-bin` values stay base64 as on the wire. */
function toHeaders(headers: http2.IncomingHttpHeaders, skip: ReadonlySet<string>): Headers {
  const out = new HeaderMap();
  for (const key in headers) {
    if (key.charCodeAt(0) === 58 /* ":" */ || skip.has(key)) continue;
    const v = headers[key];
    if (Array.isArray(v)) for (const one of v) out.append(key, one);
    else if (v !== undefined) out.append(key, v);
  }
  return out;
}

// What grpc-js leaves out of the response metadata: its compression filter drops the encodings
// from the headers; the status trailers become the status; the details trailer is not relayed.
const responseHeaderSkip = new Set(["grpc-encoding", "grpc-accept-encoding", STATUS_DETAILS_KEY]);
const trailerSkip = new Set(["grpc-status", "grpc-message", "grpc-encoding", "grpc-accept-encoding", STATUS_DETAILS_KEY]);

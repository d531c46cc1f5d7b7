/**
 * The baseline of the gateway benchmark's targets, in a process of its own: a
 * bare Node.js reverse proxy in front of the same gRPC upstream the gateway
 * calls. A proxy cannot transcode, so its clients speak the upstream's
 * protocol: a `node:http2` server (h2c) relays each request stream to a new
 * stream on one long-lived h2c session to the upstream — request headers
 * (pseudo-headers but :method and :path left to the session), the body piped,
 * the answer's headers, body and trailers relayed back. No parsing, no
 * authentication, no rate limit, no cache, no logging.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import net, { type AddressInfo } from "node:net";
import { childInput, serveChild } from "./child.js";

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const { upstreamAddress } = childInput<{ upstreamAddress: string }>();
const [upstreamHost = "127.0.0.1", upstreamPort = "0"] = upstreamAddress.split(/:(?=\d+$)/);

let session: ClientHttp2Session | undefined;
/** The upstream session, opened again if it went away. */
function upstream(): ClientHttp2Session {
  if (!session || session.closed || session.destroyed) {
    // TCP_NODELAY on both sides, as any proxy (and the gateway's listener) sets it: an answer is several small frames.
    const s = http2.connect(`http://${upstreamAddress}`, { createConnection: () => net.connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true }) });
    s.on("error", () => undefined); // its streams fail with it; the next request opens a new session
    s.on("close", () => { if (session === s) session = undefined; });
    session = s;
  }
  return session;
}
upstream();

/** The request's headers to forward: every regular header, :method and :path (:scheme and :authority are the upstream session's). */
function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ":method": headers[":method"], ":path": headers[":path"] };
  for (const name in headers) if (name.charCodeAt(0) !== 58 /* ":" */) out[name] = headers[name];
  return out;
}

const server = http2.createServer();
server.on("connection", (socket: net.Socket) => socket.setNoDelay(true));
server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
  let up;
  try {
    up = upstream().request(forwardable(headers));
  } catch {
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-message": "upstream unavailable" }, { endStream: true });
    return;
  }
  let trailers: IncomingHttpHeaders | undefined;
  let wantTrailers = false;
  up.on("response", (h, flags) => {
    if (stream.closed) return;
    if (flags & NGHTTP2_FLAG_END_STREAM) {
      stream.respond(h, { endStream: true }); // trailers-only answer (an error status)
      return;
    }
    stream.respond(h, { waitForTrailers: true });
    up.pipe(stream);
  });
  up.on("trailers", (t) => {
    trailers = t;
    if (wantTrailers && !stream.closed) stream.sendTrailers(t);
  });
  stream.on("wantTrailers", () => {
    if (trailers) stream.sendTrailers(trailers);
    else wantTrailers = true;
  });
  up.on("error", () => undefined); // handled on close
  up.on("close", () => {
    if (trailers || stream.closed) return;
    if (!stream.headersSent) stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-message": "upstream stream reset" }, { endStream: true });
    else stream.close(NGHTTP2_INTERNAL_ERROR);
  });
  stream.on("error", () => undefined);
  stream.on("close", () => { if (!up.closed) up.close(NGHTTP2_CANCEL); });
  stream.pipe(up);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

serveChild({ port: (server.address() as AddressInfo).port }, {}, async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    // Open client sessions (h2load's, the checker's) end with the process.
    setTimeout(resolve, 1_000).unref();
  });
  session?.destroy();
});

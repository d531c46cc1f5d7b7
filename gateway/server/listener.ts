import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import { Duplex } from "node:stream";

/** A request on either protocol (the HTTP/2 compatibility API mirrors HTTP/1's). */
export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;
export type RequestHandler = (req: AnyRequest, res: AnyResponse) => void;

export interface ListenerOptions {
  /** Time allowed to receive a request's headers (slowloris guard); default 10 s. */
  readonly headersTimeoutMs?: number;
  /** An idle connection is closed after this long; default 60 s. */
  readonly idleTimeoutMs?: number;
  /** Called for connections refused before a request exists (malformed or ambiguous framing). */
  readonly onClientError?: (err: Error) => void;
}

export interface Listener {
  listen(port: number, host: string): Promise<number>;
  /** Stops accepting, lets requests in flight finish for up to `drainMs`, then closes every connection. */
  close(drainMs: number): Promise<void>;
  /** Open connections (both protocols). */
  connections(): number;
}

const PEER = Symbol("peer address");
type Http2SessionWithPeer = http2.ServerHttp2Session & { [PEER]?: string };

/** The client's IP address on either protocol ("" if unknown). */
export function remoteAddressOf(req: AnyRequest): string {
  const session = (req as Http2ServerRequest).stream?.session as Http2SessionWithPeer | undefined;
  return session?.[PEER] ?? req.socket?.remoteAddress ?? "";
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One TCP port serving HTTP/1.1 and cleartext HTTP/2 (h2c with prior
 * knowledge, as gRPC clients speak it): the first bytes of each connection
 * pick the protocol. HTTP/1.1 framing is parsed strictly by Node's llhttp
 * (conflicting Content-Length/Transfer-Encoding, bad chunking and the like are
 * refused with 400 and the connection closed), never leniently.
 */
export function createListener(handler: RequestHandler, opts: ListenerOptions = {}): Listener {
  const idleTimeout = opts.idleTimeoutMs ?? 60_000;
  const h1 = http.createServer({
    requestTimeout: 0, headersTimeout: opts.headersTimeoutMs ?? 10_000, insecureHTTPParser: false, connectionsCheckingInterval: 1_000,
  }, handler);
  h1.keepAliveTimeout = idleTimeout;
  // This server never listens itself (sockets are handed to it), but Node starts its header and
  // request timeout checks, and closeIdleConnections' bookkeeping, on "listening".
  h1.emit("listening");
  h1.on("clientError", (err: Error & { code?: string }, socket: Socket) => {
    opts.onClientError?.(err);
    const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request";
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  });
  const h2 = http2.createServer({ settings: { enableConnectProtocol: false } }, handler);
  h2.setTimeout(idleTimeout);
  const sockets = new Set<Socket>();
  // noDelay: HTTP/2 runs over a JS stream here (see replay), which never sets TCP_NODELAY on the socket;
  // Nagle plus delayed ACKs would then add ~40 ms to every h2c call.
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    route(socket, h1, h2);
  });
  return {
    listen: (port, host) => new Promise((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(port, host, () => {
        tcp.off("error", reject);
        resolve((tcp.address() as AddressInfo).port);
      });
    }),
    async close(drainMs) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      h1.closeIdleConnections();
      const deadline = Date.now() + drainMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        h1.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const s of sockets) s.destroy();
      await closed;
    },
    connections: () => sockets.size,
  };
}

/** Reads until the protocol is known, puts the bytes back, and hands the socket over. */
function route(socket: Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2 && seen.length < H2_PREFACE.length) return; // could still be either: wait for more
    socket.off("data", onData);
    socket.pause();
    if (isH2) {
      // The HTTP/2 session reads the socket's native handle, which would skip
      // bytes put back with unshift: give it a stream that starts with them.
      // The session (created synchronously) remembers the peer's address,
      // which its requests cannot read through the wrapped stream.
      const onSession = (session: http2.ServerHttp2Session) => { (session as Http2SessionWithPeer)[PEER] = socket.remoteAddress ?? ""; };
      h2.once("session", onSession);
      h2.emit("connection", replay(socket, seen));
      h2.off("session", onSession);
    } else {
      socket.unshift(seen);
      h1.emit("connection", socket);
    }
    socket.resume();
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}

/** A duplex over `socket` whose readable side first yields `head`. */
function replay(socket: Socket, head: Buffer): Duplex {
  const stream: Duplex = new Duplex({
    read: () => { socket.resume(); },
    write: (chunk: Buffer, _enc, cb) => { socket.write(chunk, cb); },
    final: (cb) => { socket.end(cb); },
    destroy: (err, cb) => { socket.destroy(err ?? undefined); cb(err); },
  });
  stream.push(head);
  socket.on("data", (d: Buffer) => { if (!stream.push(d)) socket.pause(); });
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  socket.on("error", (err) => stream.destroy(err));
  return stream;
}

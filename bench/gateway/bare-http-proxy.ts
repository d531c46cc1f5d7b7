/**
 * The context baseline of the gateway benchmark, in a process of its own: a
 * bare Node.js HTTP reverse proxy in front of the trivial HTTP upstream (the
 * same project as JSON, none of the gRPC upstream's cost). A node:http server
 * pipes each request to the HTTP upstream over a keep-alive agent and pipes
 * the answer back — no authentication, no rate limit, no cache, no
 * transcoding, no logging. The targets are judged against the bare gRPC proxy
 * (bare-grpc-proxy.ts), which is in front of the gateway's own upstream.
 */
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { childInput, serveChild } from "./child.js";

/** Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's own, never forwarded. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...headers };
  for (const h of HOP_BY_HOP) delete out[h];
  return out;
}

const { upstreamPort } = childInput<{ upstreamPort: number }>();
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((req, res) => {
  const up = http.request({ host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers: forwardable(req.headers), agent }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, forwardable(upRes.headers));
    upRes.pipe(res);
  });
  up.on("error", () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

serveChild({ port: (server.address() as AddressInfo).port }, {}, async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  agent.destroy();
});

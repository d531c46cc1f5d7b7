import { encodeGrpcMessage } from "../native/grpc-message.js";
import { createNativeHandler, type NativeExchange, type NativeHandler, type NativeHandlerOptions } from "../native/proxy.js";
import type { AnyRequest, AnyResponse } from "../server/listener.js";
import type { GatewaySchema } from "./gateway-schema.js";

/**
 * gRPC, gRPC-Web and Connect forwarding (native/proxy.ts) for every service
 * of `schema`, rebuilt after each schema change so reflected services join
 * and grow without a restart. A call to a service whose reflection cluster
 * has not loaded yet is answered UNAVAILABLE with a message saying so (gRPC
 * and gRPC-Web: trailers-only `grpc-status: 14`; Connect: 503 with its JSON
 * error), never forwarded; anything else unknown is left to REST as before.
 */
export function createSchemaNativeHandler<X extends NativeExchange>(schema: GatewaySchema, opts: Omit<NativeHandlerOptions<X>, "services">): NativeHandler<X> {
  const build = () => createNativeHandler<X>({ ...opts, services: schema.services() });
  let current = build();
  schema.onChange(() => { current = build(); });
  const requestIdHeader = (opts.requestIdHeader ?? "x-request-id").toLowerCase();
  return {
    handle(req, res, exchange) {
      if (current.handle(req, res, exchange)) return true;
      const service = /^\/([^/?]+)\/[^/?]+(\?|$)/.exec(req.url ?? "")?.[1];
      const cluster = service === undefined ? undefined : schema.pendingCluster(service);
      if (cluster === undefined || req.method !== "POST") return false;
      const headers = new Headers(exchange?.responseHeaders);
      if (exchange?.requestId !== undefined) headers.set(requestIdHeader, exchange.requestId);
      replyUnavailable(req, res, headers, `${service} is not available yet: cluster ${cluster} has not answered server reflection; retry later`);
      return true;
    },
  };
}

/**
 * An UNAVAILABLE reply in the request's protocol, without reading its body:
 * gRPC's status in trailers (as Connect writes it), gRPC-Web's in the headers
 * (a trailers-only reply), Connect's as its JSON error with 503.
 */
function replyUnavailable(req: AnyRequest, res: AnyResponse, headers: Headers, message: string): void {
  const contentType = String(req.headers["content-type"] ?? "");
  const out = Object.fromEntries(headers);
  const status = { "grpc-status": "14", "grpc-message": encodeGrpcMessage(message) };
  const reply = res as AnyResponse & { writeHead(status: number, headers: Record<string, string>): void; addTrailers(t: Record<string, string>): void };
  if (contentType.startsWith("application/grpc-web")) {
    reply.writeHead(200, { ...out, "content-type": contentType, ...status });
    res.end();
    return;
  }
  if (contentType.startsWith("application/grpc")) {
    reply.writeHead(200, { ...out, "content-type": contentType });
    reply.addTrailers(status);
    res.end();
    return;
  }
  const body = JSON.stringify({ code: "unavailable", message });
  reply.writeHead(503, { ...out, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
  res.end(body);
}

import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { AnyRequest, AnyResponse } from "../server/listener.js";
import { respecGrpcMessage } from "./grpc-message.js";

/**
 * Serves a Connect router's handlers on the gateway's listener: a request whose path, method and content type
 * one of `handlers` accepts is answered (gRPC, gRPC-Web or Connect) and `dispatch` answers true; anything else
 * is left to the next handler (false). `values` makes the call's context values once it is accepted.
 */
export function routerDispatcher(handlers: readonly UniversalHandler[], logger: Logger) {
  const byPath = new Map<string, UniversalHandler>(handlers.map((h) => [h.requestPath, h]));
  return function dispatch(req: AnyRequest, res: AnyResponse, values: () => ContextValues): boolean {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const h = byPath.get(q < 0 ? url : url.slice(0, q));
    if (!h || !h.allowedMethods.includes(req.method ?? "") || !h.supportedContentType(req.headers["content-type"] ?? "")) return false;
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values());
    h(uReq).then((uRes) => universalResponseToNodeResponse(uRes.trailer ? { ...uRes, body: respecOnEnd(uRes.body, uRes.trailer) } : uRes, res))
      .catch((err: unknown) => {
        // The reply was already under way (usually the client went away): nothing left to tell it.
        if (ConnectError.from(err).code !== Code.Aborted) logger.debug({ err, rpc: h.requestPath }, "native reply not completed");
        res.destroy();
      });
    return true;
  };
}

/** Passes a gRPC response body through, then fixes the `grpc-message` trailer written after it. */
async function* respecOnEnd(body: AsyncIterable<Uint8Array> | undefined, trailer: Headers): AsyncIterable<Uint8Array> {
  if (body) yield* body;
  respecGrpcMessage(trailer);
}

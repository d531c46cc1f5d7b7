import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import type { Logger } from "pino";
import { currentRequestId, withRequestId } from "../telemetry.js";

/** Header carrying the request id across the mesh (DESIGN.md, Observability). */
export const REQUEST_ID_HEADER = "x-request-id";

const serverFault = new Set([Code.Internal, Code.Unknown, Code.DataLoss]);

/**
 * Server interceptor, outermost: runs the call with the request id from
 * `x-request-id` (unless baggage already carries one) so logs and spans carry
 * it; turns any non-Connect error into INTERNAL with a client-safe message;
 * logs each failure once, server faults at error level with their cause.
 */
export function createServerErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const requestId = req.header.get(REQUEST_ID_HEADER);
    const method = `${req.service.typeName}/${req.method.name}`;
    const fail = (err: unknown): never => {
      const e = err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      if (serverFault.has(e.code)) logger.error({ err: e.cause ?? e, method, code: Code[e.code] }, "request failed");
      else logger.debug({ method, code: Code[e.code], reason: e.rawMessage }, "request refused");
      throw e;
    };
    const run = async () => {
      const res = await next(req).catch(fail);
      if (!res.stream) return res;
      return { ...res, message: guard(res as StreamResponse, fail) } as StreamResponse;
    };
    return requestId && !currentRequestId() ? withRequestId(requestId, run) : run();
  };
}

async function* guard(res: StreamResponse, fail: (err: unknown) => never) {
  try {
    yield* res.message;
  } catch (err) {
    fail(err);
  }
}

import { toJson, type DescMessage, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema, ErrorInfoSchema, HelpSchema, LocalizedMessageSchema, PreconditionFailureSchema,
  QuotaFailureSchema, RequestInfoSchema, ResourceInfoSchema, RetryInfoSchema,
} from "../gen/google/rpc/error_details_pb.js";
import { errorNameFor, httpStatusFor } from "./http-status.js";

/** The JSON body of every failed REST reply (DESIGN.md "Errors"). */
export interface ErrorEnvelope {
  error: string;
  message: string;
  statusCode: number;
  timestamp: string;
  requestId: string;
  details: JsonObject[];
}

/** An HTTP status the Connect code table has no code for (405, 413), with its envelope name. */
interface HttpOnly {
  readonly status: number;
  readonly name: string;
}

const httpOnly = new WeakMap<ConnectError, HttpOnly>();

/**
 * A failure that exists only at the HTTP layer: `code` is what native clients
 * and logs see, `status` and `name` what the REST envelope answers (405
 * METHOD_NOT_ALLOWED, 413 PAYLOAD_TOO_LARGE).
 */
export function httpError(message: string, code: Code, status: number, name: string): ConnectError {
  const err = new ConnectError(message, code);
  httpOnly.set(err, { status, name });
  return err;
}

/** 405 for a method a path does not serve. */
export const methodNotAllowed = (method: string | undefined, path: string) =>
  httpError(`${method} is not allowed on ${path}`, Code.FailedPrecondition, 405, "METHOD_NOT_ALLOWED");

/**
 * The `google.rpc` detail types the gateway renders as JSON (with their
 * `@type`). DebugInfo is left out on purpose: it may carry stack traces.
 */
const renderable: readonly DescMessage[] = [
  BadRequestSchema, ErrorInfoSchema, RetryInfoSchema, QuotaFailureSchema, PreconditionFailureSchema,
  RequestInfoSchema, ResourceInfoSchema, HelpSchema, LocalizedMessageSchema,
];

/**
 * Renders an error as the gateway's one JSON envelope: HTTP status from
 * `httpStatusFor`, the error name from `errorNameFor` (TOKEN_EXPIRED for an
 * expired token; an `httpError`'s own status and name), the client-safe
 * message, and the upstream's typed details (`google.rpc.BadRequest` field
 * violations and the like) as proto3 JSON.
 * Any other thrown value becomes INTERNAL with a generic message.
 */
export function errorEnvelope(thrown: unknown, requestId: string, now = new Date()): ErrorEnvelope {
  const err = ConnectError.from(thrown, Code.Internal);
  const internal = !(thrown instanceof ConnectError) && err.code === Code.Internal;
  const details: JsonObject[] = [];
  for (const schema of renderable) {
    for (const d of err.findDetails(schema)) {
      details.push({ "@type": `type.googleapis.com/${schema.typeName}`, ...(toJson(schema, d) as JsonObject) });
    }
  }
  const expired = err.code === Code.Unauthenticated && err.findDetails(ErrorInfoSchema).some((i) => i.reason === "TOKEN_EXPIRED");
  const http = httpOnly.get(err);
  return {
    error: http?.name ?? (expired ? "TOKEN_EXPIRED" : errorNameFor[err.code]),
    message: internal ? "internal error" : err.rawMessage,
    statusCode: http?.status ?? httpStatusFor[err.code],
    timestamp: now.toISOString(),
    requestId,
    details,
  };
}

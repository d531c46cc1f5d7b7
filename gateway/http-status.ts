import { Code } from "@connectrpc/connect";

/**
 * Connect code → HTTP status for REST/JSON replies: the Connect protocol
 * table (the same in connect-es, Envoy and grpc-gateway). The one place the
 * gateway maps codes to statuses; `Record<Code, …>` keeps it exhaustive.
 */
export const httpStatusFor: Readonly<Record<Code, number>> = {
  [Code.Canceled]: 499, [Code.Unknown]: 500, [Code.InvalidArgument]: 400, [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404, [Code.AlreadyExists]: 409, [Code.PermissionDenied]: 403, [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400, [Code.Aborted]: 409, [Code.OutOfRange]: 400, [Code.Unimplemented]: 501,
  [Code.Internal]: 500, [Code.Unavailable]: 503, [Code.DataLoss]: 500, [Code.Unauthenticated]: 401,
};

/**
 * The `error` name of the JSON envelope (DESIGN.md "Errors"), by code. An
 * expired access token is UNAUTHENTICATED with the ErrorInfo reason
 * TOKEN_EXPIRED and answers `TOKEN_EXPIRED` instead (see `errorEnvelope`).
 */
export const errorNameFor: Readonly<Record<Code, string>> = {
  [Code.Canceled]: "CANCELLED", [Code.Unknown]: "INTERNAL", [Code.InvalidArgument]: "VALIDATION_ERROR",
  [Code.DeadlineExceeded]: "TIMEOUT", [Code.NotFound]: "NOT_FOUND", [Code.AlreadyExists]: "CONFLICT",
  [Code.PermissionDenied]: "FORBIDDEN", [Code.ResourceExhausted]: "TOO_MANY_REQUESTS",
  [Code.FailedPrecondition]: "VALIDATION_ERROR", [Code.Aborted]: "CONFLICT", [Code.OutOfRange]: "VALIDATION_ERROR",
  [Code.Unimplemented]: "NOT_IMPLEMENTED", [Code.Internal]: "INTERNAL", [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "INTERNAL", [Code.Unauthenticated]: "UNAUTHORIZED",
};

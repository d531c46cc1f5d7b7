/** Milliseconds per `grpc-timeout` unit (gRPC over HTTP/2: Hours, Minutes, Seconds, milli-, micro-, nanoseconds). */
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** `TimeoutValue` is at most 8 ASCII digits, `TimeoutUnit` one letter; nothing else (no sign, no space). */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;

/**
 * The milliseconds of a `grpc-timeout` header value, rounded up so that a
 * sub-millisecond timeout stays a (tiny) deadline rather than none;
 * undefined when the value is absent or malformed.
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests
 */
export function parseGrpcTimeout(value: string | null | undefined): number | undefined {
  const m = value === null || value === undefined ? null : GRPC_TIMEOUT.exec(value);
  if (!m) return undefined;
  return Math.ceil(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/**
 * The timeout of an upstream call in milliseconds: the route's timeout (the
 * router's `default_timeout` or the cluster's `request_timeout`), shortened
 * by the client's `grpc-timeout` when that is shorter. A client may never
 * lengthen it. A malformed `grpc-timeout` is ignored (the route's timeout
 * applies), as Envoy's router does; `parseGrpcTimeout` tells it apart for a
 * caller that prefers to refuse it.
 */
export function deadlineFor(routeTimeoutMs: number, clientGrpcTimeout?: string | null): number {
  const client = parseGrpcTimeout(clientGrpcTimeout);
  return client === undefined ? routeTimeoutMs : Math.min(routeTimeoutMs, client);
}

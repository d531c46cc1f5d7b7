import type { LogRecordInit } from "./queued-record.js";

/** The fields of the gateway's one log line per request (snake_case, as every mesh log line). */
export interface AccessLogLine {
  readonly request_id: string;
  readonly method: string;
  readonly path: string;
  /** The matched route template; "" when none matched. */
  readonly route: string;
  readonly status: number;
  /** Rounded to the microsecond. */
  readonly latency_ms: number;
  readonly bytes_in: number;
  readonly bytes_out: number;
  readonly user_id: string;
  readonly project_id: string;
  readonly api_key_id: string;
  /** HIT, MISS, BYPASS or "". */
  readonly cache: string;
  readonly rate_limited: boolean;
  /** The cluster's service that answered; "" when the gateway answered itself. */
  readonly upstream: string;
  /** The error name (NOT_FOUND…) of a failed request; "" on success. */
  readonly error_code: string;
  readonly trace_id: string;
  readonly span_id: string;
}

/**
 * The pino object of the access-log line for one request, from the same
 * record the shipper sends: `logger.info(accessLogLine(e), "request")`.
 * Every field is always present (zero values for absent ones), so the lines
 * keep one shape for whatever reads them. Its request_id, trace_id and
 * span_id win over those the logger's mixin takes from the active context.
 */
export function accessLogLine(e: LogRecordInit): AccessLogLine {
  return {
    request_id: e.requestId ?? "",
    method: e.method ?? "",
    path: e.path ?? "",
    route: e.route ?? "",
    status: e.statusCode ?? 0,
    latency_ms: Math.round((e.latency ?? 0) * 1000) / 1000,
    bytes_in: e.bytesIn ?? 0,
    bytes_out: e.bytesOut ?? 0,
    user_id: e.userId ?? "",
    project_id: e.projectId ?? "",
    api_key_id: e.apiKeyId ?? "",
    cache: e.cacheStatus ?? "",
    rate_limited: e.rateLimited ?? false,
    upstream: e.upstreamService ?? "",
    error_code: e.errorCode ?? "",
    trace_id: e.traceId ?? "",
    span_id: e.spanId ?? "",
  };
}

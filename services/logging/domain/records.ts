import { createViolations } from "../../../lib/errors.js";
import type { LogEntry } from "../storage/port.js";

/** A record as clients send it (the proto's LogRecord, timestamp already a Date). */
export interface LogInput {
  requestId: string;
  traceId: string;
  spanId: string;
  timestamp?: Date | undefined;
  method: string;
  path: string;
  route: string;
  statusCode: number;
  latency: number;
  ip: string;
  userAgent: string;
  userId: string;
  projectId: string;
  apiKeyId: string;
  cacheStatus: string;
  rateLimited: boolean;
  upstreamService: string;
  bytesIn: number;
  bytesOut: number;
  errorCode: string;
}

type Violations = ReturnType<typeof createViolations>;

const requestIdPattern = /^[A-Za-z0-9._:\-]{1,128}$/;
const cacheStatuses = new Set(["", "HIT", "MISS", "BYPASS"]);
/** Records may be stamped at most this far ahead of the server's clock. */
const MAX_FUTURE_MS = 5 * 60_000;

function text(v: Violations, field: string, value: string, max: number): string {
  if (value.length > max) v.add(field, `must be at most ${max} characters`);
  return value;
}

/**
 * Checks one record and normalizes it for storage (method upper-cased,
 * missing timestamp = now). Problems are added to `v` under `prefix` (e.g.
 * `logs[3].`), so a batch reports every bad field of every record.
 */
export function toEntry(v: Violations, prefix: string, r: LogInput, now: Date): LogEntry {
  if (!requestIdPattern.test(r.requestId)) v.add(`${prefix}request_id`, "is required: 1 to 128 letters, digits or . _ : -");
  const method = r.method.trim().toUpperCase();
  if (!/^[A-Z]{1,16}$/.test(method)) v.add(`${prefix}method`, "must be an HTTP method such as GET");
  if (!r.path.startsWith("/") || r.path.length > 2048) v.add(`${prefix}path`, "must start with / and be at most 2048 characters");
  if (!Number.isInteger(r.statusCode) || r.statusCode < 100 || r.statusCode > 599) v.add(`${prefix}status_code`, "must be an HTTP status between 100 and 599");
  if (!Number.isFinite(r.latency) || r.latency < 0) v.add(`${prefix}latency`, "must be a number of milliseconds, 0 or more");
  if (!cacheStatuses.has(r.cacheStatus)) v.add(`${prefix}cache_status`, "must be HIT, MISS, BYPASS or empty");
  const timestamp = r.timestamp ?? now;
  if (timestamp.getTime() > now.getTime() + MAX_FUTURE_MS) v.add(`${prefix}timestamp`, "must not be in the future");
  return {
    requestId: r.requestId, traceId: text(v, `${prefix}trace_id`, r.traceId, 64), spanId: text(v, `${prefix}span_id`, r.spanId, 32),
    timestamp, method, path: r.path, route: text(v, `${prefix}route`, r.route, 2048), statusCode: r.statusCode, latency: r.latency,
    ip: text(v, `${prefix}ip`, r.ip, 64), userAgent: text(v, `${prefix}user_agent`, r.userAgent, 1024),
    userId: text(v, `${prefix}user_id`, r.userId, 128), projectId: text(v, `${prefix}project_id`, r.projectId, 128),
    apiKeyId: text(v, `${prefix}api_key_id`, r.apiKeyId, 128), cacheStatus: r.cacheStatus, rateLimited: r.rateLimited,
    upstreamService: text(v, `${prefix}upstream_service`, r.upstreamService, 64), bytesIn: r.bytesIn, bytesOut: r.bytesOut,
    errorCode: text(v, `${prefix}error_code`, r.errorCode, 64), ingestedAt: now,
  };
}

import { context, isSpanContextValid, trace } from "@opentelemetry/api";
import { pino, type DestinationStream, type Logger } from "pino";
import { currentRequestId } from "./telemetry.js";

/** pino's logger, re-exported so callers type it without importing pino. */
export type { Logger } from "pino";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Written as `service` on every line. */
  service: string;
  /** Minimum level; default "info" (each process passes its validated LOG_LEVEL). */
  level?: string;
  /** Where JSON lines go. Default stdout. */
  destination?: DestinationStream;
}

/**
 * A pino JSON logger whose every line carries `service` and, when the active context has them, `request_id`
 * (baggage) and `trace_id` / `span_id` (a valid active span), so log lines join their trace in Jaeger.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    { level: opts.level ?? "info", base: { service: opts.service }, mixin: correlationFields },
    opts.destination,
  );
}

function correlationFields(): Record<string, string> {
  const fields: Record<string, string> = {};
  const requestId = currentRequestId();
  if (requestId !== undefined) fields.request_id = requestId;
  const spanContext = trace.getSpan(context.active())?.spanContext();
  if (spanContext !== undefined && isSpanContextValid(spanContext)) {
    fields.trace_id = spanContext.traceId;
    fields.span_id = spanContext.spanId;
  }
  return fields;
}

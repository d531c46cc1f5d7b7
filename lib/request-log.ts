/**
 * The stored request record, shared by its writer (the logging service) and
 * its reader (the analytics service, which rolls records up): both use the
 * `request_logs` collection of the same database.
 */
export const LOGS_COLLECTION = "request_logs";

/** One stored request record (`_id` is the request ID, which makes ingest idempotent). */
export interface LogEntry {
  readonly requestId: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly timestamp: Date;
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly statusCode: number;
  /** Milliseconds. */
  readonly latency: number;
  readonly ip: string;
  readonly userAgent: string;
  readonly userId: string;
  readonly projectId: string;
  readonly apiKeyId: string;
  readonly cacheStatus: string;
  readonly rateLimited: boolean;
  readonly upstreamService: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly errorCode: string;
  /** When this service stored it (tail streams and rollups follow this). */
  readonly ingestedAt: Date;
}


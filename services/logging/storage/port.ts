import type { ReadScope } from "../../../lib/project-directory.js";
import type { LogEntry } from "../../../lib/request-log.js";

export type { LogEntry };

/** A position in ingest order. */
export interface LogPosition {
  readonly ingestedAt: Date;
  readonly requestId: string;
}

/** Query filters; absent fields match everything. */
export interface LogFilter {
  readonly userId?: string | undefined;
  readonly projectId?: string | undefined;
  readonly apiKeyId?: string | undefined;
  readonly statusCode?: number | undefined;
  readonly minStatusCode?: number | undefined;
  readonly method?: string | undefined;
  readonly pathPrefix?: string | undefined;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
}

/**
 * Storage port of the logging service. Methods throw ConnectError:
 * UNAVAILABLE promptly when the database is unreachable, INTERNAL otherwise.
 */
export interface LogStore {
  /** Creates the indexes the queries need (idempotent). */
  prepare(): Promise<void>;
  /** Stores new records; answers the request IDs that were already stored (dropped). */
  insert(entries: readonly LogEntry[]): Promise<{ inserted: number; duplicates: string[] }>;
  /** Matching records in scope, newest first (timestamp, then request ID), with the total count. */
  query(scope: ReadScope, filter: LogFilter, offset: number, limit: number): Promise<{ items: LogEntry[]; total: number }>;
  get(scope: ReadScope, requestId: string): Promise<LogEntry | undefined>;
  /** Records after `after` in ingest order (ingest time, then request ID), ingested no later than `until`. */
  readAfter(after: LogPosition | undefined, until: Date, limit: number): Promise<LogEntry[]>;
  /** Deletes records stamped before `before`; answers how many. */
  deleteOlderThan(before: Date): Promise<number>;
}

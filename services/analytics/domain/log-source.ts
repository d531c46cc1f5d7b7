import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import type { LogRecord, LoggingService } from "../../../gen/mesh/logging/v1/logging_pb.js";
import type { LogEntry } from "../../../lib/request-log.js";

/** A position in the logging service's ingest order. */
export interface LogCursor {
  readonly at: Date;
  readonly id: string;
}

/** Where the rollup worker reads request records from, in ingest order. */
export interface LogSource {
  read(after: LogCursor | undefined, limit: number): Promise<LogEntry[]>;
}

function entryOf(r: LogRecord): LogEntry {
  const { $typeName, timestamp, ingestedAt, ...rest } = r;
  void $typeName;
  return { ...rest, timestamp: timestamp ? timestampDate(timestamp) : new Date(0), ingestedAt: ingestedAt ? timestampDate(ingestedAt) : new Date(0) };
}

/** Reads records through the logging service's internal ReadLogs RPC. */
export function createLoggingLogSource(client: Client<typeof LoggingService>): LogSource {
  return {
    async read(after, limit) {
      const res = await client.readLogs({
        after: after ? { ingestedAt: timestampFromDate(after.at), requestId: after.id } : undefined, limit,
      }, { timeoutMs: 30_000 });
      return res.logs.map(entryOf);
    },
  };
}

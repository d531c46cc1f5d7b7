import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { LogRecordSchema, type LoggingService, type LogRecord } from "../../../gen/mesh/logging/v1/logging_pb.js";
import { invalidArgument } from "../../../lib/errors.js";
import { callerFrom } from "../../../lib/identity.js";
import type { LoggingDomain } from "../domain/logging-domain.js";
import type { LogInput } from "../domain/records.js";
import type { LogEntry } from "../storage/port.js";

/** Messages of one ingest stream being stored at once. */
const STREAM_WINDOW = 2;

const date = (t: Timestamp | undefined) => (t ? timestampDate(t) : undefined);

function input(r: LogRecord): LogInput {
  return { ...r, timestamp: date(r.timestamp) };
}

/** The wire form of a stored record. */
export function record(e: LogEntry): LogRecord {
  const { ingestedAt, timestamp, ...rest } = e;
  return create(LogRecordSchema, { ...rest, timestamp: timestampFromDate(timestamp), ingestedAt: timestampFromDate(ingestedAt) });
}

/** gRPC surface of the logging service. */
export function createLoggingServiceImpl(domain: LoggingDomain): ServiceImpl<typeof LoggingService> {
  return {
    async ingestLog(req, ctx) {
      await domain.ingestOne(callerFrom(ctx.requestHeader), input(req.log ?? create(LogRecordSchema)));
      return { message: "Log ingested" };
    },
    async ingestLogBatch(req, ctx) {
      const result = await domain.ingestBatch(callerFrom(ctx.requestHeader), req.logs.map(input));
      return { ingested: result.ingested, errors: result.errors };
    },
    async ingestLogStream(requests) {
      // Message n+1 is received, decoded and validated while message n is
      // being stored (at most STREAM_WINDOW stores in flight), so the store
      // never idles between messages. Every message before an invalid one is
      // stored before the stream fails; nothing after it is.
      let ingested = 0;
      let duplicates = 0;
      const inFlight: Promise<void>[] = [];
      const settle = async () => {
        const results = await Promise.allSettled(inFlight.splice(0));
        const failed = results.find((r) => r.status === "rejected");
        if (failed) throw failed.reason;
      };
      try {
        for await (const req of requests) {
          if (req.logs.length === 0) continue;
          const { entries, errors } = domain.checkBatch(req.logs.map(input));
          if (errors.length > 0) {
            await settle();
            const e = errors[0]!;
            throw invalidArgument([{ field: `logs[${e.index}]`, description: e.message }]);
          }
          const stored = domain.storeBatch(undefined, entries).then((r) => {
            ingested += r.ingested - r.duplicates;
            duplicates += r.duplicates;
          });
          stored.catch(() => undefined); // observed by settle() or the shift below
          inFlight.push(stored);
          if (inFlight.length >= STREAM_WINDOW) await inFlight.shift();
        }
        await settle();
      } catch (err) {
        await Promise.allSettled(inFlight); // never answer while a store is still running
        throw err;
      }
      return { ingested, duplicates };
    },
    async queryLogs(req, ctx) {
      const page = await domain.query(callerFrom(ctx.requestHeader), { ...req, from: date(req.from), to: date(req.to) });
      return { logs: page.items.map(record), total: page.total, page: page.page, limit: page.limit };
    },
    async listErrorLogs(req, ctx) {
      const page = await domain.errors(callerFrom(ctx.requestHeader), { ...req, from: date(req.from), to: date(req.to) });
      return { logs: page.items.map(record), total: page.total, page: page.page, limit: page.limit };
    },
    async getLog(req, ctx) {
      return { log: record(await domain.get(callerFrom(ctx.requestHeader), req.requestId)) };
    },
    async readLogs(req) {
      const after = req.after?.ingestedAt ? { ingestedAt: timestampDate(req.after.ingestedAt), requestId: req.after.requestId } : undefined;
      const { entries, next } = await domain.read(after, req.limit);
      return {
        logs: entries.map(record),
        next: next ? { ingestedAt: timestampFromDate(next.ingestedAt), requestId: next.requestId } : undefined,
      };
    },
    async *tailLogs(req, ctx) {
      const caller = callerFrom(ctx.requestHeader);
      for await (const e of domain.tail(caller, { ...req, from: date(req.from), to: date(req.to) }, ctx.signal)) {
        yield { log: record(e) };
      }
    },
  };
}

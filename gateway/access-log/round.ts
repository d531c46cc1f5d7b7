import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { fieldViolationsOf } from "../../lib/errors.js";
import type { QueuedRecord } from "./queued-record.js";
import type { RecordBuffer } from "./record-buffer.js";

/** How the records of one round are cut into IngestLogStream messages. */
export interface RoundLimits {
  /** Records per message, 1 to 1000 (the service's limit). */
  readonly batchSize: number;
  /**
   * Estimated bytes per message: a message is closed early once its records'
   * text would pass this (a record larger than this still travels, alone).
   */
  readonly maxMessageBytes: number;
  /** Messages per stream. */
  readonly maxMessages: number;
}

/** The outcome of one round, as the shipper acts on it. */
export type RoundOutcome =
  | { readonly kind: "shipped"; readonly duplicates: number }
  /** The service refused record `index` of one message (which one, the error does not say). */
  | { readonly kind: "rejected"; readonly index: number; readonly reason: string }
  | { readonly kind: "failed"; readonly error: ConnectError };

/**
 * A record's encoded size, over-estimated from its text (UTF-16 units, so
 * non-ASCII text may take up to 3× as many bytes on the wire). With the
 * default 1 MiB per message even that stays under the services' 4 MiB
 * receive limit (lib/grpc/server.ts), which would otherwise refuse the whole
 * message again on every retry.
 */
export function approxRecordBytes(r: QueuedRecord): number {
  return 96 + r.requestId.length + r.traceId.length + r.spanId.length + r.method.length + r.path.length + r.route.length
    + r.ip.length + r.userAgent.length + r.userId.length + r.projectId.length + r.apiKeyId.length + r.cacheStatus.length
    + r.upstreamService.length + r.errorCode.length;
}

/** The messages of the next round: the oldest buffered records, in order, cut by `limits`. */
export function planRound(buffer: RecordBuffer<QueuedRecord>, limits: RoundLimits): QueuedRecord[][] {
  const messages: QueuedRecord[][] = [];
  let current: QueuedRecord[] = [];
  let bytes = 0;
  for (let i = 0; i < buffer.size; i++) {
    const r = buffer.at(i);
    const b = approxRecordBytes(r);
    if (current.length >= limits.batchSize || (current.length > 0 && bytes + b > limits.maxMessageBytes)) {
      messages.push(current);
      if (messages.length >= limits.maxMessages) return messages;
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += b;
  }
  if (current.length > 0) messages.push(current);
  return messages;
}

const RECORD_FIELD = /^logs\[(\d+)\]/;

/**
 * Sends `messages` over one IngestLogStream call and waits for its answer.
 * Never throws: every failure is an outcome. INVALID_ARGUMENT naming
 * `logs[i]` (services/logging/transport/logging-service.ts) becomes
 * "rejected"; anything else "failed".
 */
export async function shipRound(client: Client<typeof LoggingService>, messages: readonly QueuedRecord[][],
  opts: { signal: AbortSignal; timeoutMs: number }): Promise<RoundOutcome> {
  async function* requests() {
    for (const logs of messages) yield { logs };
  }
  try {
    const res = await client.ingestLogStream(requests(), { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return { kind: "shipped", duplicates: res.duplicates };
  } catch (err) {
    const error = ConnectError.from(err, Code.Unknown);
    if (error.code === Code.InvalidArgument) {
      for (const v of fieldViolationsOf(error)) {
        const m = RECORD_FIELD.exec(v.field);
        if (m) return { kind: "rejected", index: Number(m[1]), reason: v.description };
      }
    }
    return { kind: "failed", error };
  }
}

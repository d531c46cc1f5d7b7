import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createDropReporter } from "./drop-reporter.js";
import { queuedRecord, type LogRecordInit, type QueuedRecord } from "./queued-record.js";
import { createRecordBuffer } from "./record-buffer.js";
import { planRound, shipRound, type RoundOutcome } from "./round.js";
import { shipperSettings, type AccessLogShipperOptions } from "./shipper-options.js";
import { createWakeup } from "./wakeup.js";

export type { LogRecordInit } from "./queued-record.js";
export type { AccessLogShipperOptions } from "./shipper-options.js";

export interface AccessLogShipperStats {
  /** Records held, confirmed by no answer yet. */
  readonly buffered: number;
  /** Records the logging service confirmed (duplicates included). */
  readonly shipped: number;
  /** Of `shipped`, those it already had: resends after an answer was lost. */
  readonly duplicates: number;
  /** Records never buffered: the buffer was full (or the shipper closed). */
  readonly dropped: number;
  /** Records the logging service refused as invalid (or that could not be built), dropped one by one. */
  readonly rejected: number;
  /** Rounds that failed and were retried. */
  readonly failedAttempts: number;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at: Date };
}

export interface AccessLogShipper {
  /** Buffers one record and returns: never blocks, never throws. */
  record(entry: LogRecordInit): void;
  stats(): AccessLogShipperStats;
  /** Resolves once every record buffered at the call is shipped (or refused), or after `timeoutMs`, whichever is first. */
  flush(timeoutMs: number): Promise<void>;
  /** Stops the loop, cancelling a round in flight; records still buffered are lost (flush first). */
  close(): Promise<void>;
}

/**
 * The gateway's access-log shipper: records go to a bounded buffer and a
 * background loop ships them to the logging service's IngestLogStream,
 * off the request path. A record leaves the buffer only when a stream's
 * answer confirms it; a failed round (UNAVAILABLE, deadline, anything) is
 * resent whole after a capped exponential backoff, which ingest's
 * idempotency on request_id makes safe.
 *
 * When the buffer is full the NEWEST record is dropped: the records being
 * shipped are always the oldest, so they can never be evicted mid-round, and
 * an outage keeps its beginning (usually the telling part). Drops are counted
 * and warned about at most once per `dropWarnIntervalMs`.
 *
 * A record the service refuses (INVALID_ARGUMENT on `logs[i]`) is dropped
 * alone, counted as `rejected` and logged with its request_id. The error
 * names the record's index but not its message, so after such a failure in
 * a multi-message round the next rounds carry one message each until the
 * culprit is found (the messages before it were stored; resending them only
 * counts duplicates).
 */
export function createAccessLogShipper(opts: AccessLogShipperOptions): AccessLogShipper {
  const s = shipperSettings(opts);
  const { logger } = opts;
  const client = createClient(LoggingService, opts.transport);
  const buffer = createRecordBuffer<QueuedRecord>(s.maxBuffered);
  const drops = createDropReporter(logger, s.dropWarnIntervalMs, s.timers);
  const wakeup = createWakeup(s.timers);
  const abort = new AbortController();
  const counts = { shipped: 0, duplicates: 0, rejected: 0, failedAttempts: 0 };
  let lastError: AccessLogShipperStats["lastError"];
  let closed = false;
  let closing: Promise<void> | undefined;
  let flushers = 0; // flush() calls waiting: ship without waiting for a batch to fill
  let flushKick = false; // a flush() since the last backoff began: retry at once
  let isolate = 0; // single-message rounds left while looking for a refused record
  let streak = 0; // consecutive failed rounds
  const buffered = () => buffer.size;

  function refuse(index: number, reason: string): void {
    const r = buffer.removeAt(index);
    counts.rejected++;
    logger.warn({ request_id: r.requestId, reason }, "access-log record refused by the logging service; dropped");
  }

  function failed(error: ConnectError): void {
    counts.failedAttempts++;
    streak++;
    lastError = { code: Code[error.code], message: error.rawMessage, at: s.now() };
    logger.warn({ err: error, attempt: streak, buffered: buffer.size }, "access-log shipping failed; will retry");
  }

  /** Applies a round's outcome to the buffer; false when the round must be retried after a backoff. */
  function settle(messages: readonly QueuedRecord[][], outcome: RoundOutcome): boolean {
    if (outcome.kind === "shipped") {
      const sent = messages.reduce((n, m) => n + m.length, 0);
      buffer.shift(sent);
      counts.shipped += sent;
      counts.duplicates += outcome.duplicates;
      if (streak > 0) logger.info({ failedAttempts: streak }, "access-log shipping resumed");
      streak = 0;
      if (isolate > 0) isolate--;
      return true;
    }
    if (closed) return false; // cancelled by close(): not a failure of the service
    if (outcome.kind === "rejected" && messages.length > 1) {
      isolate = messages.length;
      return true;
    }
    if (outcome.kind === "rejected" && outcome.index < messages[0]!.length) {
      refuse(outcome.index, outcome.reason);
      return true;
    }
    failed(outcome.kind === "failed" ? outcome.error
      : new ConnectError(`refused logs[${outcome.index}] of a ${messages[0]!.length}-record message`, Code.InvalidArgument));
    return false;
  }

  async function shipOnce(): Promise<boolean> {
    const limits = { batchSize: s.batchSize, maxMessageBytes: s.maxMessageBytes, maxMessages: isolate > 0 ? 1 : s.maxBatchesPerRound };
    const messages = planRound(buffer, limits);
    const outcome = await shipRound(client, messages, { signal: abort.signal, timeoutMs: s.roundTimeoutMs });
    const ok = settle(messages, outcome);
    wakeup.poke(); // flush() waiters re-check
    return ok;
  }

  function backoffMs(): number {
    const full = Math.min(s.backoffMaxMs, s.backoffMinMs * 2 ** (streak - 1));
    return Math.round(full / 2 + (s.random() * full) / 2);
  }

  async function run(): Promise<void> {
    let retry = false;
    while (!closed) {
      if (!retry) {
        await wakeup.until(() => closed || buffer.size > 0);
        // Batch: ship once a message is full, a flush waits, or the interval passed.
        await wakeup.until(() => closed || buffer.size >= s.batchSize || flushers > 0 || isolate > 0, s.flushIntervalMs);
      }
      if (closed) break;
      retry = buffer.size > 0 && !(await shipOnce());
      if (retry && !closed) {
        await wakeup.until(() => closed || flushKick, backoffMs());
        flushKick = false;
      }
    }
  }
  const loop = run().catch((err: unknown) => logger.error({ err }, "access-log shipper stopped by a bug; records are no longer shipped"));

  return {
    record(entry) {
      try {
        if (closed || buffer.size >= s.maxBuffered) {
          drops.drop(buffered);
          return;
        }
        buffer.push(queuedRecord(entry));
        if (buffer.size === 1 || buffer.size === s.batchSize) wakeup.poke();
      } catch (err) {
        counts.rejected++;
        logger.warn({ err }, "access-log record could not be built; dropped");
      }
    },
    stats: () => ({ buffered: buffer.size, dropped: drops.total, ...counts, ...(lastError ? { lastError } : {}) }),
    async flush(timeoutMs) {
      const mark = buffer.pushed;
      if (closed || buffer.headSeq() >= mark) return;
      flushers++;
      flushKick = true;
      wakeup.poke();
      try {
        await wakeup.until(() => closed || buffer.headSeq() >= mark, timeoutMs);
      } finally {
        flushers--;
      }
    },
    close() {
      closing ??= (async () => {
        closed = true;
        abort.abort();
        wakeup.poke();
        await loop;
        drops.close(buffer.size);
        if (buffer.size > 0) logger.warn({ unshipped: buffer.size }, "access-log shipper closed with records not shipped");
      })();
      return closing;
    },
  };
}

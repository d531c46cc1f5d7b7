import type { Transport } from "@connectrpc/connect";
import type { Logger } from "../../lib/logger.js";
import { realTimers, type Timers } from "./wakeup.js";

/**
 * Options of `createAccessLogShipper`. Sizing of the defaults: a buffered
 * record takes ~0.65 KB of heap (measured with typical values: UUID ids,
 * a browser user agent; ~0.4 KB encoded), so the default 100,000-record
 * buffer costs ~65 MB when full and holds 100 s of traffic at 1,000
 * requests/s: a logging outage of a minute, plus at most one capped retry
 * backoff (10 s), loses nothing at that load.
 */
export interface AccessLogShipperOptions {
  /** Reaches the logging service (a cluster's transport; tests pass a plain gRPC one). */
  readonly transport: Transport;
  readonly logger: Logger;
  /** Records held while unconfirmed; beyond it new records are dropped (and counted). Default 100,000. */
  readonly maxBuffered?: number;
  /** Records per IngestLogStream message, 1 to 1000. Default 500. */
  readonly batchSize?: number;
  /** A record waits at most this long for a batch to fill before it is sent. Default 1000 ms. */
  readonly flushIntervalMs?: number;
  /** Messages per stream (round); default 10. */
  readonly maxBatchesPerRound?: number;
  /** Estimated bytes per message (see `approxRecordBytes`); default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Deadline of one round's stream; default 15 s. */
  readonly roundTimeoutMs?: number;
  /** Retry delay after the first failed round, doubled per failure up to `backoffMaxMs`; default 200 ms and 10 s. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** At most one "records dropped" warning per this interval; default 10 s. */
  readonly dropWarnIntervalMs?: number;
  /** Clock of `lastError.at`; default the wall clock. */
  readonly now?: () => Date;
  /** Jitter source in [0, 1): each retry waits between half and all of its backoff. Default Math.random. */
  readonly random?: () => number;
  /** Timers of the batching wait, the retry backoff, flush's bound and drop warnings; default Node's. */
  readonly timers?: Timers;
}

export type ShipperSettings = Required<Omit<AccessLogShipperOptions, "transport" | "logger">>;

/** The options with defaults applied; RangeError naming every bad one. */
export function shipperSettings(opts: AccessLogShipperOptions): ShipperSettings {
  const s: ShipperSettings = {
    maxBuffered: opts.maxBuffered ?? 100_000,
    batchSize: opts.batchSize ?? 500,
    flushIntervalMs: opts.flushIntervalMs ?? 1_000,
    maxBatchesPerRound: opts.maxBatchesPerRound ?? 10,
    maxMessageBytes: opts.maxMessageBytes ?? 1024 * 1024,
    roundTimeoutMs: opts.roundTimeoutMs ?? 15_000,
    backoffMinMs: opts.backoffMinMs ?? 200,
    backoffMaxMs: opts.backoffMaxMs ?? 10_000,
    dropWarnIntervalMs: opts.dropWarnIntervalMs ?? 10_000,
    now: opts.now ?? (() => new Date()),
    random: opts.random ?? Math.random,
    timers: opts.timers ?? realTimers,
  };
  const bad: string[] = [];
  const whole = (name: keyof ShipperSettings, min: number, max = Infinity) => {
    const v = s[name] as number;
    if (!Number.isInteger(v) || v < min || v > max) bad.push(`${name} must be an integer from ${min}${max < Infinity ? ` to ${max}` : ""}, got ${v}`);
  };
  whole("maxBuffered", 1);
  whole("batchSize", 1, 1000);
  whole("flushIntervalMs", 1);
  whole("maxBatchesPerRound", 1);
  whole("maxMessageBytes", 1);
  whole("roundTimeoutMs", 1);
  whole("backoffMinMs", 1);
  whole("backoffMaxMs", s.backoffMinMs);
  whole("dropWarnIntervalMs", 1);
  if (bad.length > 0) throw new RangeError(`access-log shipper: ${bad.join("; ")}`);
  return s;
}

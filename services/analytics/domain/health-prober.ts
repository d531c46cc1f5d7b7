import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import type { Logger } from "pino";
import type { HealthSample } from "../storage/health.js";

export interface HealthProberOptions {
  /** Where samples go (the health store). */
  readonly samples: { record(sample: HealthSample): Promise<void> };
  /** Services to check: short name ("auth") → gRPC address ("host:port"). */
  readonly targets: Readonly<Record<string, string>>;
  readonly now: () => Date;
  readonly logger: Logger;
  /** Time between rounds; default 10 s. */
  readonly intervalMs?: number;
  /** Deadline of one check; default 2 s. */
  readonly timeoutMs?: number;
}

const check = healthService.Check!;

/**
 * Checks `grpc.health.v1.Health/Check` (whole server, service "") of every
 * target each interval and records one sample per target: ok when it answers
 * SERVING within the deadline; NOT_SERVING, any error, an unreachable address
 * or a missed deadline record not ok. One long-lived channel per target,
 * reconnecting quickly so a recovered service is seen within a round or two.
 */
export function createHealthProber(opts: HealthProberOptions) {
  const intervalMs = opts.intervalMs ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const clients = new Map(Object.entries(opts.targets).map(([name, address]) => [name, new grpc.Client(
    address, grpc.credentials.createInsecure(),
    { "grpc.initial_reconnect_backoff_ms": 500, "grpc.max_reconnect_backoff_ms": Math.min(intervalMs, 5_000) },
  )] as const));
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<unknown> = Promise.resolve();
  let stopped = false;

  function serving(client: grpc.Client): Promise<boolean> {
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        check.path, check.requestSerialize, check.responseDeserialize as (b: Buffer) => { status?: string },
        { service: "" }, { deadline: Date.now() + timeoutMs },
        (err, res) => resolve(!err && res?.status === "SERVING"),
      );
    });
  }

  async function runOnce(): Promise<HealthSample[]> {
    const at = opts.now();
    return Promise.all([...clients].map(async ([service, client]) => {
      const sample = { service, at, ok: await serving(client) };
      await opts.samples.record(sample).catch((err: unknown) => {
        opts.logger.warn({ err, service }, "could not record a health sample");
      });
      return sample;
    }));
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      round = runOnce().finally(schedule);
    }, intervalMs);
    timer.unref();
  }

  return {
    /** One round: checks every target at once, records and answers the samples. */
    runOnce,
    /** Runs a round now, then one every interval, until `stop`. */
    start(): void {
      stopped = false;
      round = runOnce().finally(schedule);
    },
    /** Stops the rounds, waits for the one in flight and closes the channels. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await round.catch(() => undefined);
      for (const client of clients.values()) client.close();
    },
  };
}

export type HealthProber = ReturnType<typeof createHealthProber>;

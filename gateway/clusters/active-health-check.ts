import { createGrpcHealthProbe } from "../stats/grpc-health-probe.js";

export interface HealthCheckOptions {
  /** Time between two probes of an endpoint (config default 10 s). */
  readonly intervalMs: number;
  /** A probe slower than this fails (config default 1 s). */
  readonly timeoutMs: number;
  /** Failed probes in a row that make a healthy endpoint unhealthy, at least 1 (config default 3). */
  readonly unhealthyThreshold: number;
  /** Passed probes in a row that make an unhealthy endpoint healthy again, at least 1 (config default 2). */
  readonly healthyThreshold: number;
  /** The `grpc.health.v1` service name asked about; default "" (the whole server). */
  readonly service?: string;
}

/** `unknown` until an endpoint's first probe (and always without health checking). */
export type HealthStatus = "unknown" | "healthy" | "unhealthy";

/** What active health checking keeps per endpoint; shown by `Cluster.endpoints()`. */
export interface ProbedEndpoint {
  readonly address: string;
  health: HealthStatus;
  /** Probes in a row with the same result: > 0 passed, < 0 failed. */
  probeStreak: number;
}

export interface ActiveHealthCheck {
  /** Probes every endpoint now (also done every `intervalMs`); resolves when all have answered. */
  checkNow(): Promise<void>;
  stop(): void;
}

/**
 * Active health checking: every `intervalMs`, `grpc.health.v1.Health/Check`
 * on each current endpoint (over the shared probe's own channels, so probes
 * are neither traffic nor subject to the circuit breaker), the first round
 * at once. An endpoint's first probe decides its state (Envoy also holds a
 * new host out until it passes once); after that it takes
 * `unhealthyThreshold` failures in a row to leave the rotation and
 * `healthyThreshold` passes in a row to rejoin it. A probe still running is
 * not started again. Timers are unref'd: checks never keep the process up.
 */
export function startActiveHealthCheck(opts: HealthCheckOptions, endpoints: () => readonly ProbedEndpoint[]): ActiveHealthCheck {
  const probe = createGrpcHealthProbe();
  const probing = new Set<string>();
  let stopped = false;

  async function checkOne(e: ProbedEndpoint): Promise<void> {
    if (probing.has(e.address)) return;
    probing.add(e.address);
    try {
      const { serving } = await probe.check(e.address, opts.service ?? "", opts.timeoutMs);
      if (!stopped) apply(e, serving, opts);
    } finally {
      probing.delete(e.address);
    }
  }

  async function checkNow(): Promise<void> {
    if (stopped) return;
    const current = endpoints();
    probe.retain(new Set(current.map((e) => e.address))); // close the channels of endpoints DNS took away
    await Promise.all(current.map(checkOne));
  }

  const timer = setInterval(() => void checkNow(), opts.intervalMs);
  timer.unref();
  void checkNow();
  return {
    checkNow,
    stop() {
      stopped = true;
      clearInterval(timer);
      probe.close();
    },
  };
}

/** Moves `e` along its streak and flips its state at the thresholds. */
function apply(e: ProbedEndpoint, serving: boolean, opts: HealthCheckOptions): void {
  if (serving) {
    e.probeStreak = e.probeStreak > 0 ? e.probeStreak + 1 : 1;
    if (e.health === "unknown" || (e.health === "unhealthy" && e.probeStreak >= opts.healthyThreshold)) e.health = "healthy";
  } else {
    e.probeStreak = e.probeStreak < 0 ? e.probeStreak - 1 : -1;
    if (e.health === "unknown" || (e.health === "healthy" && -e.probeStreak >= opts.unhealthyThreshold)) e.health = "unhealthy";
  }
}

import { Code } from "@connectrpc/connect";

export interface OutlierDetectionOptions {
  /** Connection-level failures in a row that eject an endpoint, at least 1 (config default 5). */
  readonly consecutiveFailures: number;
  /** An ejection lasts this times the number of times the endpoint has been ejected (config default 30 s). */
  readonly baseEjectionMs: number;
  /** Most endpoints ejected at once, in percent of the cluster's endpoints (config default 10); see `createOutlierDetector`. */
  readonly maxEjectionPercent: number;
  /** Longest single ejection; default 300 s (Envoy's `max_ejection_time`) or `baseEjectionMs` if longer. */
  readonly maxEjectionMs?: number;
}

/** What outlier detection keeps per endpoint; shown by `Cluster.endpoints()`. */
export interface OutlierState {
  /** Connection-level failures since the last success or ejection. */
  consecutiveFailures: number;
  /** Epoch ms until which the endpoint is out of rotation; 0 when it never was. */
  ejectedUntil: number;
  /** Times ejected so far. */
  ejections: number;
}

/**
 * The codes that say the endpoint, not the request, is at fault (the
 * OutlierDetection message in config.proto): it could not be reached,
 * did not answer in time, or broke. Application answers (NOT_FOUND,
 * INVALID_ARGUMENT, PERMISSION_DENIED...) are successes for this purpose, and
 * CANCELED (the caller gave up) says nothing about the endpoint.
 */
const ENDPOINT_FAULTS: ReadonlySet<Code> = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown]);

export interface OutlierDetector {
  /** Records the outcome of one call to `endpoint` (undefined code = success); answers whether it was ejected now. */
  record(endpoint: OutlierState, peers: readonly OutlierState[], code: Code | undefined): boolean;
  isEjected(endpoint: OutlierState): boolean;
  /** Ejections so far, across endpoints. */
  ejections(): number;
}

/**
 * Passive health: Envoy's consecutive-failure ejection. An endpoint whose
 * last `consecutiveFailures` calls all failed with an endpoint fault leaves
 * the rotation for `baseEjectionMs × times ejected` (capped), then returns on
 * its own (no probe needed: the next failures eject it again, for longer).
 * The cap follows Envoy's documented rule: when no endpoint is ejected, one
 * may always be (even at 0 %, even alone: the cluster's panic mode still
 * routes to it); otherwise only if the ejected share stays within
 * `maxEjectionPercent` afterwards. Of 3 endpoints at the default 10 %, one can
 * be out; at 50 %, still one (2/3 > 50 %); of 4 at 50 %, two.
 */
export function createOutlierDetector(opts: OutlierDetectionOptions, now: () => number = Date.now): OutlierDetector {
  const maxEjectionMs = Math.max(opts.maxEjectionMs ?? 300_000, opts.baseEjectionMs);
  let ejections = 0;
  const isEjected = (e: OutlierState) => e.ejectedUntil > now();

  function mayEject(peers: readonly OutlierState[]): boolean {
    const ejected = peers.filter(isEjected).length;
    return ejected === 0 || (100 * (ejected + 1)) / peers.length <= opts.maxEjectionPercent;
  }

  return {
    record(e, peers, code) {
      if (code === Code.Canceled || isEjected(e)) return false;
      if (code === undefined || !ENDPOINT_FAULTS.has(code)) {
        e.consecutiveFailures = 0;
        return false;
      }
      e.consecutiveFailures++;
      if (e.consecutiveFailures < opts.consecutiveFailures || !mayEject(peers)) return false;
      e.ejections++;
      e.consecutiveFailures = 0;
      e.ejectedUntil = now() + Math.min(opts.baseEjectionMs * e.ejections, maxEjectionMs);
      ejections++;
      return true;
    },
    isEjected,
    ejections: () => ejections,
  };
}

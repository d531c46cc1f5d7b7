import { lookup } from "node:dns/promises";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { createGrpcTransport, type GrpcTransport } from "../../lib/grpc/transport.js";
import { startActiveHealthCheck, type HealthCheckOptions, type HealthStatus, type ProbedEndpoint } from "./active-health-check.js";
import { createCircuitBreaker } from "./circuit-breaker.js";
import { createOutlierDetector, type OutlierDetectionOptions, type OutlierState } from "./outlier-detection.js";
import { callWithRetry, createRetryBudget, isRetryable, type RetryPolicy } from "./retry.js";

export type LbPolicy = "round_robin" | "least_request";

export interface ClusterOptions {
  readonly name: string;
  /** Static `host:port` endpoints; or */
  readonly endpoints?: readonly string[];
  /** a DNS name whose addresses are the endpoints (a Kubernetes headless Service), re-resolved every `refreshMs`. */
  readonly dns?: { readonly name: string; readonly port: number; readonly refreshMs: number };
  readonly lbPolicy?: LbPolicy;
  /** Calls in flight beyond which new ones wait (`maxPending`) or fail fast with UNAVAILABLE (circuit breaking); default 1024. */
  readonly maxConcurrent?: number;
  /**
   * Calls beyond `maxConcurrent` that wait for a slot, first come first
   * served, each at most until its own deadline; more fail fast with
   * UNAVAILABLE. Default 0: refuse at once (the config's default is 1024).
   */
  readonly maxPending?: number;
  /** Deadline of unary calls that set none; default 10 s. */
  readonly defaultTimeoutMs?: number;
  /** Active `grpc.health.v1` checks of every endpoint; none when absent. */
  readonly healthCheck?: HealthCheckOptions;
  /** Ejection of endpoints after consecutive failures; none when absent. */
  readonly outlierDetection?: OutlierDetectionOptions;
  /** Retries of idempotent unary calls that fail UNAVAILABLE; none when absent. */
  readonly retry?: RetryPolicy;
  /** Uniform [0, 1) for the retry backoff jitter (tests); default Math.random. */
  readonly random?: () => number;
  readonly interceptors?: readonly Interceptor[];
  /** Resolver for `dns` (tests inject one); default: every address `dns.lookup` answers. */
  readonly resolve?: (name: string) => Promise<string[]>;
  readonly onResolveError?: (err: unknown) => void;
}

export interface EndpointState {
  readonly address: string;
  inFlight: number;
  requests: number;
  failures: number;
  // The fields below are always set by `Cluster.endpoints()`; optional only so
  // that hand-made EndpointState values written before them still type-check.
  /** Active health: `unknown` before the first probe and without health checking. */
  readonly health?: HealthStatus;
  /** Endpoint-fault failures (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN) since its last success or ejection. */
  readonly consecutiveFailures?: number;
  /** Epoch ms until which outlier detection keeps it out of rotation; 0 if never ejected (a past time: back in). */
  readonly ejectedUntil?: number;
  /** Times ejected so far. */
  readonly ejections?: number;
}

export interface ClusterStats {
  readonly inFlight: number;
  /** Calls waiting for a slot now. */
  readonly pending: number;
  /** Calls refused by the circuit breaker (same as `overflows()`). */
  readonly overflows: number;
  /** Calls whose deadline passed while they waited for a slot. */
  readonly pendingTimeouts: number;
  /** Retries made. */
  readonly retries: number;
  /** Retries not made because the retry budget was spent. */
  readonly retryBudgetExhausted: number;
  /** Outlier ejections. */
  readonly ejections: number;
  /** Picks made in panic mode (no endpoint healthy and un-ejected: all used). */
  readonly panics: number;
}

export interface Cluster {
  readonly name: string;
  /** A Connect transport whose every call goes to one endpoint of the cluster (a retry: to another one if possible). */
  readonly transport: Transport;
  endpoints(): readonly EndpointState[];
  /** Calls refused by the circuit breaker so far. */
  overflows(): number;
  /** Counters of the circuit breaker, retries, ejections and panic mode. */
  stats(): ClusterStats;
  /** Resolves the DNS name now (also done on the refresh interval). */
  refresh(): Promise<void>;
  /** Closes every channel and stops health checks and DNS refreshes. */
  close(): void;
}

interface Endpoint extends ProbedEndpoint, OutlierState {
  inFlight: number;
  requests: number;
  failures: number;
  readonly transport: GrpcTransport;
}

/**
 * Cluster channels come back within 2 s of an endpoint's return rather than
 * after grpc-js's default backoff (up to 120 s): outlier ejections end and
 * health checks pass on their own schedule, and a channel still backing off
 * would fail the first calls at once and get the endpoint ejected again.
 */
const CHANNEL_OPTIONS = { "grpc.max_reconnect_backoff_ms": 2_000 };

/**
 * An upstream cluster: one long-lived HTTP/2 channel per endpoint, a load
 * balancer over the endpoints in rotation (round robin, or least request:
 * the fewest calls in flight, ties in turn), a circuit breaker (concurrent
 * calls, then a bounded FIFO of pending ones), and optionally active health
 * checks, outlier ejection and retries of idempotent unary calls.
 *
 * An endpoint is in rotation unless a health check found it unhealthy or
 * outlier detection ejected it. When none is left, every endpoint is used
 * (Envoy's panic mode, at a 0 % threshold): a cluster whose checks all fail
 * is more often a probe problem than a total outage, and refusing every call
 * would turn it into one. Calls then fail or succeed on their own merits.
 *
 * DNS endpoints follow the name's address set: new addresses get channels,
 * vanished ones are closed once their calls finish. A failed resolution
 * keeps the last known set.
 */
export function createCluster(opts: ClusterOptions): Cluster {
  const policy = opts.lbPolicy ?? "round_robin";
  const defaultTimeoutMs = opts.defaultTimeoutMs ?? 10_000;
  const breaker = createCircuitBreaker({ name: opts.name, maxConcurrent: opts.maxConcurrent ?? 1024, maxPending: opts.maxPending ?? 0 });
  const outliers = opts.outlierDetection ? createOutlierDetector(opts.outlierDetection) : undefined;
  const budget = opts.retry ? createRetryBudget(opts.retry, () => breaker.inFlight() + breaker.pending()) : undefined;
  let endpoints: Endpoint[] = [];
  let next = 0;
  let retries = 0;
  let panics = 0;
  /** Failures an endpoint answered, as opposed to local refusals (breaker, no endpoints): only those are retried. */
  const upstreamFailures = new WeakSet<ConnectError>();

  const open = (address: string): Endpoint => ({
    address, inFlight: 0, requests: 0, failures: 0, health: "unknown", probeStreak: 0, consecutiveFailures: 0, ejectedUntil: 0, ejections: 0,
    // Unary calls skip grpc-js's call stack (~15 % of the gateway's CPU per request, bench/README.md, Gateway).
    transport: createGrpcTransport({ address, defaultTimeoutMs, interceptors: opts.interceptors, channelOptions: CHANNEL_OPTIONS, unaryOverHttp2: true }),
  });
  const setAddresses = (addresses: readonly string[]) => {
    const wanted = new Set(addresses);
    const kept = endpoints.filter((e) => wanted.has(e.address));
    for (const e of endpoints) if (!wanted.has(e.address)) closeWhenIdle(e);
    const known = new Set(kept.map((e) => e.address));
    endpoints = [...kept, ...[...wanted].filter((a) => !known.has(a)).map(open)];
  };
  setAddresses(opts.endpoints ?? []);

  const resolve = opts.resolve ?? (async (name: string) => (await lookup(name, { all: true })).map((a) => a.address));
  async function refresh(): Promise<void> {
    if (!opts.dns) return;
    try {
      const addresses = await resolve(opts.dns.name);
      if (addresses.length > 0) setAddresses(addresses.map((a) => `${a.includes(":") ? `[${a}]` : a}:${opts.dns!.port}`));
    } catch (err) {
      opts.onResolveError?.(err);
    }
  }
  const timer = opts.dns ? setInterval(() => void refresh(), opts.dns.refreshMs) : undefined;
  timer?.unref();
  const health = opts.healthCheck ? startActiveHealthCheck(opts.healthCheck, () => endpoints) : undefined;

  const noEndpoints = () => new ConnectError(`no endpoints in cluster ${opts.name}`, Code.Unavailable);
  const inRotation = (e: Endpoint) => e.health !== "unhealthy" && !(outliers?.isEjected(e) ?? false);

  /** An endpoint in rotation (all of them in panic mode), preferably not one of `avoid`. */
  function pick(avoid?: ReadonlySet<Endpoint>): Endpoint {
    if (endpoints.length === 0) throw noEndpoints();
    let pool = endpoints.filter(inRotation);
    if (pool.length === 0) {
      pool = endpoints;
      panics++;
    }
    const fresh = avoid?.size ? pool.filter((e) => !avoid.has(e)) : pool;
    if (fresh.length > 0) pool = fresh;
    const start = next++ % pool.length;
    if (policy === "round_robin") return pool[start]!;
    let best = pool[start]!;
    for (let i = 1; i < pool.length; i++) {
      const e = pool[(start + i) % pool.length]!;
      if (e.inFlight < best.inFlight) best = e;
    }
    return best;
  }

  const begin = (e: Endpoint) => {
    e.inFlight++;
    e.requests++;
  };
  /** Ends a call on `e` (err undefined: success), feeding outlier detection. */
  const settle = (e: Endpoint, err: ConnectError | undefined) => {
    e.inFlight--;
    if (err) e.failures++;
    outliers?.record(e, endpoints, err?.code);
  };

  /** One attempt of a unary call: a slot, an endpoint not in `tried` if possible, the call. */
  async function attemptUnary<I extends DescMessage, O extends DescMessage>(call: UnaryCall<I>, method: DescMethodUnary<I, O>,
    tried: Set<Endpoint>): Promise<UnaryResponse<I, O>> {
    if (endpoints.length === 0) throw noEndpoints();
    await breaker.acquire(call.signal, call.deadlineAt);
    try {
      const e = pick(tried);
      const remaining = call.deadlineAt - Date.now();
      if (remaining <= 0) throw new ConnectError("deadline exceeded before the call could start", Code.DeadlineExceeded);
      tried.add(e);
      begin(e);
      try {
        const res = await e.transport.unary(method, call.signal, remaining, call.header, call.input, call.contextValues);
        settle(e, undefined);
        return res;
      } catch (err) {
        const failure = ConnectError.from(err);
        settle(e, failure);
        upstreamFailures.add(failure);
        throw failure;
      }
    } finally {
      breaker.release();
    }
  }

  const transport: Transport = {
    unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined,
      header: HeadersInit | undefined, input: MessageInitShape<I>, contextValues?: ContextValues): Promise<UnaryResponse<I, O>> {
      const call: UnaryCall<I> = { signal, deadlineAt: Date.now() + (timeoutMs ?? defaultTimeoutMs), header, input, contextValues };
      const tried = new Set<Endpoint>();
      if (!opts.retry || !budget || !isRetryable(method)) return attemptUnary(call, method, tried);
      const attempt = () => attemptUnary(call, method, tried);
      return callWithRetry(attempt, {
        policy: opts.retry, budget, deadlineAt: call.deadlineAt, signal, random: opts.random,
        retryable: (err) => err.code === Code.Unavailable && upstreamFailures.has(err),
        onRetry: () => void retries++,
      });
    },
    async stream<I extends DescMessage, O extends DescMessage>(method: DescMethodStreaming<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined,
      header: HeadersInit | undefined, input: AsyncIterable<MessageInitShape<I>>, contextValues?: ContextValues): Promise<StreamResponse<I, O>> {
      if (endpoints.length === 0) throw noEndpoints();
      const deadlineAt = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
      await breaker.acquire(signal, deadlineAt);
      let e: Endpoint;
      try {
        e = pick();
      } catch (err) {
        breaker.release();
        throw err;
      }
      begin(e);
      let finished = false;
      const finish = (err: ConnectError | undefined) => {
        if (finished) return;
        finished = true;
        settle(e, err);
        breaker.release();
      };
      try {
        const remaining = timeoutMs === undefined ? undefined : Math.max(1, deadlineAt - Date.now());
        const res = await e.transport.stream(method, signal, remaining, header, input, contextValues);
        return { ...res, message: watched(res.message, finish) };
      } catch (err) {
        finish(ConnectError.from(err));
        throw err;
      }
    },
  };

  return {
    name: opts.name,
    transport,
    endpoints: () => endpoints.map(({ address, inFlight, requests, failures, health: h, consecutiveFailures, ejectedUntil, ejections }) =>
      ({ address, inFlight, requests, failures, health: h, consecutiveFailures, ejectedUntil, ejections })),
    overflows: () => breaker.overflows(),
    stats: () => ({
      inFlight: breaker.inFlight(), pending: breaker.pending(), overflows: breaker.overflows(), pendingTimeouts: breaker.pendingTimeouts(),
      retries, retryBudgetExhausted: budget?.exhausted() ?? 0, ejections: outliers?.ejections() ?? 0, panics,
    }),
    refresh,
    close() {
      if (timer) clearInterval(timer);
      health?.stop();
      for (const e of endpoints) e.transport.close();
      endpoints = [];
    },
  };
}

/** The parts of a unary call that every attempt reuses. */
interface UnaryCall<I extends DescMessage> {
  readonly signal: AbortSignal | undefined;
  /** Epoch ms: the caller's timeout (or the default) from the moment the call arrived, queueing and retries included. */
  readonly deadlineAt: number;
  readonly header: HeadersInit | undefined;
  readonly input: MessageInitShape<I>;
  readonly contextValues: ContextValues | undefined;
}

/** Closes a removed endpoint's channel once its calls are done (checked every second). */
function closeWhenIdle(e: Endpoint): void {
  if (e.inFlight === 0) return e.transport.close();
  const t = setInterval(() => {
    if (e.inFlight > 0) return;
    clearInterval(t);
    e.transport.close();
  }, 1_000);
  t.unref();
}

/** How a stream its reader abandoned is recorded: a failure of the call, but no fault of the endpoint. */
const ABANDONED = new ConnectError("stream abandoned by its reader", Code.Canceled);

/** Passes a response stream through, reporting how it ended (error, success, or abandoned by its reader). */
async function* watched<T>(messages: AsyncIterable<T>, finish: (err: ConnectError | undefined) => void): AsyncIterable<T> {
  let outcome: ConnectError | undefined = ABANDONED;
  try {
    for await (const m of messages) yield m;
    outcome = undefined;
  } catch (err) {
    outcome = ConnectError.from(err);
    throw err;
  } finally {
    finish(outcome);
  }
}

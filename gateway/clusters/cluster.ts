import { lookup } from "node:dns/promises";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { createGrpcTransport, type GrpcTransport } from "../../lib/grpc/transport.js";

export type LbPolicy = "round_robin" | "least_request";

export interface ClusterOptions {
  readonly name: string;
  /** Static `host:port` endpoints; or */
  readonly endpoints?: readonly string[];
  /** a DNS name whose addresses are the endpoints (a Kubernetes headless Service), re-resolved every `refreshMs`. */
  readonly dns?: { readonly name: string; readonly port: number; readonly refreshMs: number };
  readonly lbPolicy?: LbPolicy;
  /** Calls in flight beyond which new ones fail fast with UNAVAILABLE (circuit breaking); default 1024. */
  readonly maxConcurrent?: number;
  /** Deadline of unary calls that set none; default 10 s. */
  readonly defaultTimeoutMs?: number;
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
}

export interface Cluster {
  readonly name: string;
  /** A Connect transport whose every call goes to one endpoint of the cluster. */
  readonly transport: Transport;
  endpoints(): readonly EndpointState[];
  /** Calls refused by the circuit breaker so far. */
  overflows(): number;
  /** Resolves the DNS name now (also done on the refresh interval). */
  refresh(): Promise<void>;
  close(): void;
}

interface Endpoint extends EndpointState {
  readonly transport: GrpcTransport;
}

/**
 * An upstream cluster: one long-lived HTTP/2 channel per endpoint, a load
 * balancer over them (round robin, or least request: the endpoint with the
 * fewest calls in flight, ties in turn), and a concurrency circuit breaker.
 * DNS endpoints follow the name's address set: new addresses get channels,
 * vanished ones are closed once their calls finish. A failed resolution
 * keeps the last known set.
 */
export function createCluster(opts: ClusterOptions): Cluster {
  const maxConcurrent = opts.maxConcurrent ?? 1024;
  const policy = opts.lbPolicy ?? "round_robin";
  let endpoints: Endpoint[] = [];
  let next = 0;
  let inFlight = 0;
  let overflows = 0;
  const open = (address: string): Endpoint => ({
    address, inFlight: 0, requests: 0, failures: 0,
    transport: createGrpcTransport({ address, defaultTimeoutMs: opts.defaultTimeoutMs, interceptors: opts.interceptors }),
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

  function pick(): Endpoint {
    if (endpoints.length === 0) throw new ConnectError(`no endpoints in cluster ${opts.name}`, Code.Unavailable);
    if (inFlight >= maxConcurrent) {
      overflows++;
      throw new ConnectError(`cluster ${opts.name} is at its limit of ${maxConcurrent} concurrent calls`, Code.Unavailable);
    }
    const start = next++ % endpoints.length;
    if (policy === "round_robin") return endpoints[start]!;
    let best = endpoints[start]!;
    for (let i = 1; i < endpoints.length; i++) {
      const e = endpoints[(start + i) % endpoints.length]!;
      if (e.inFlight < best.inFlight) best = e;
    }
    return best;
  }

  /** Counts a call against its endpoint until `done` settles. */
  function track<T>(e: Endpoint, done: Promise<T>): Promise<T> {
    e.inFlight++;
    e.requests++;
    inFlight++;
    const settle = (failed: boolean) => {
      e.inFlight--;
      inFlight--;
      if (failed) e.failures++;
    };
    done.then(() => settle(false), () => settle(true));
    return done;
  }

  const transport: Transport = {
    unary<I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined,
      header: HeadersInit | undefined, input: MessageInitShape<I>, contextValues?: ContextValues): Promise<UnaryResponse<I, O>> {
      const e = pick();
      return track(e, e.transport.unary(method, signal, timeoutMs, header, input, contextValues));
    },
    async stream<I extends DescMessage, O extends DescMessage>(method: DescMethodStreaming<I, O>, signal: AbortSignal | undefined, timeoutMs: number | undefined,
      header: HeadersInit | undefined, input: AsyncIterable<MessageInitShape<I>>, contextValues?: ContextValues): Promise<StreamResponse<I, O>> {
      const e = pick();
      let finish!: (failed: boolean) => void;
      void track(e, new Promise<void>((resolve, reject) => { finish = (failed) => (failed ? reject(new Error("stream failed")) : resolve()); })).catch(() => undefined);
      try {
        const res = await e.transport.stream(method, signal, timeoutMs, header, input, contextValues);
        return { ...res, message: watched(res.message, finish) };
      } catch (err) {
        finish(true);
        throw err;
      }
    },
  };

  return {
    name: opts.name,
    transport,
    endpoints: () => endpoints.map(({ address, inFlight: f, requests, failures }) => ({ address, inFlight: f, requests, failures })),
    overflows: () => overflows,
    refresh,
    close() {
      if (timer) clearInterval(timer);
      for (const e of endpoints) e.transport.close();
      endpoints = [];
    },
  };
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

/** Passes a response stream through, reporting when it ends (failed or not, consumed or abandoned). */
async function* watched<T>(messages: AsyncIterable<T>, finish: (failed: boolean) => void): AsyncIterable<T> {
  let failed = true;
  try {
    for await (const m of messages) yield m;
    failed = false;
  } finally {
    finish(failed);
  }
}

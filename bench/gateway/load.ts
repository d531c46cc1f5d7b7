/**
 * The load of the gateway benchmark: autocannon (programmatic API) with N
 * keep-alive connections, each sending the next GET as soon as the previous
 * answer arrived (closed loop). Every answer is checked (status, the exact
 * expected body) and its latency kept at full resolution, so percentiles are
 * not rounded to autocannon's whole milliseconds.
 */
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import { quantile } from "../support.js";

export interface LoadSpec {
  readonly url: string;
  readonly path: string;
  readonly connections: number;
  readonly durationSec: number;
  /** Bearer tokens: every request sends tokens[0], or with `rotateTokens` the next one in turn. */
  readonly tokens: readonly string[];
  readonly rotateTokens: boolean;
  readonly expectedBody: string;
}

export interface LoadResult {
  /** What made the load: autocannon (HTTP/1.1, this file) or h2load (h2c, gRPC; h2load.ts). */
  readonly generator: "autocannon" | "h2load";
  readonly durationSec: number;
  /** Answers with status 2xx and the expected body (h2load: with status 200; their bodies are checked by sample). */
  readonly ok: number;
  readonly non2xx: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  /** 2xx answers whose body differed from the expected one (h2load: failed samples, and an inconsistent DATA total). */
  readonly mismatches: number;
  /** Answers whose body was compared byte for byte: every 2xx answer here, a sample with h2load. */
  readonly checkedBodies: number;
  /** `ok` per second. */
  readonly rps: number;
  /** Latency of every answer, ms. */
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number; readonly mean: number };
  /** X-Cache values seen (HIT, MISS, …; "-" when absent). */
  readonly xCache: Readonly<Record<string, number>>;
  readonly statuses: Readonly<Record<string, number>>;
  /** The generator's own event-loop utilization over the run (near 1: it may be the bottleneck). */
  readonly generatorEventLoopUtilization: number;
  /** What else the check found (h2load: its DATA total). */
  readonly note?: string;
}

/** Runs one closed-loop load for `durationSec` and checks every answer. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies: number[] = [];
  const xCache: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  let mismatches = 0;
  let next = 0;
  const authorization = (i: number) => `Bearer ${spec.tokens[i % spec.tokens.length]}`;
  const request: autocannon.Request = {
    method: "GET",
    path: spec.path,
    headers: { authorization: authorization(0), "user-agent": "mesh-bench/1 autocannon" },
    onResponse(status, body, _ctx, headers) {
      statuses[status] = (statuses[status] ?? 0) + 1;
      const cache = String(headers?.["x-cache"] ?? "-");
      xCache[cache] = (xCache[cache] ?? 0) + 1;
      if (status >= 200 && status < 300 && body !== spec.expectedBody) mismatches++;
    },
    ...(spec.rotateTokens ? {
      setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, authorization: authorization(next++) } }),
    } : {}),
  };
  const elu0 = performance.eventLoopUtilization();
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: spec.url, connections: spec.connections, duration: spec.durationSec, timeout: 10, requests: [request],
    }, (err, result) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      const sorted = latencies.sort((a, b) => a - b);
      const ok = result["2xx"] - mismatches;
      resolve({
        generator: "autocannon",
        durationSec: result.duration,
        ok,
        non2xx: result.non2xx,
        errors: result.errors,
        mismatches,
        checkedBodies: result["2xx"],
        rps: ok / result.duration,
        latency: {
          p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999),
          max: sorted[sorted.length - 1] ?? Number.NaN, mean: sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length),
        },
        xCache, statuses,
        generatorEventLoopUtilization: performance.eventLoopUtilization(elu0).utilization,
      });
    });
    instance.on("response", (_client, _status, _bytes, responseTime) => { latencies.push(responseTime); });
  });
}

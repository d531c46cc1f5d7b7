/**
 * The cases of the gateway benchmark and how one is run: its contender
 * started in a process of its own, checked requests, a warm-up, then the
 * measured window with the CPU of every process involved.
 */
import http, { type IncomingHttpHeaders } from "node:http";
import type { Credentials } from "./fixture.js";
import { EXPECTED_BODY, GET_PROJECT_PATH, GET_PROJECT_REQUEST_FRAME, GET_PROJECT_RESPONSE_FRAME, PROJECT_ID, PROJECT_PATH } from "./fixture.js";
import { startChild, type Child, type ChildWindow } from "./child.js";
import { cpuBetween, cpuSnapshot, type CpuWindow } from "./cpu.js";
import type { GatewayLogStats, GatewayProcessInput } from "./gateway-process.js";
import { checkGrpcAnswers, runH2load, type GrpcLoadSpec, type GrpcSample } from "./h2load.js";
import { runLoad, type LoadResult } from "./load.js";
import type { UpstreamCounts, UpstreamInfo } from "./upstream.js";

export interface CaseSpec {
  readonly id: string;
  readonly label: string;
  /**
   * bare-grpc: the bare node:http2 proxy in front of the gateway's gRPC upstream, loaded by h2load with the
   * GetProject call (the targets' baseline); bare-http: the bare node:http proxy in front of the trivial
   * HTTP upstream (context); gateway: the gateway, REST GET → gRPC upstream.
   */
  readonly contender: "bare-grpc" | "bare-http" | "gateway";
  /** The issue's target the case is judged by: (a) transcoded GET through JWT + rate limit + upstream, (b) cache HIT. */
  readonly target?: "a" | "b";
  readonly state?: "embedded" | "redis";
  /** off: logger at warn (no access-log line); line: at info, one line per request; shipped: line + the access-log filter shipping records. */
  readonly log?: "off" | "line" | "shipped";
  /** Every request a token the gateway has not verified yet (its verified-token LRU misses). */
  readonly freshTokens?: boolean;
}

const gw = (target: "a" | "b", state: "embedded" | "redis", log: "off" | "line" | "shipped", freshTokens = false): CaseSpec => ({
  id: `${target}-${state}${log === "off" ? "" : `-${log === "line" ? "log" : "shipped"}`}${freshTokens ? "-fresh-tokens" : ""}`,
  label: `(${target}) gateway, ${state === "redis" ? "Redis" : "embedded"} state${log === "line" ? ", access-log line" : log === "shipped" ? ", access-log line + shipped" : ""}${freshTokens ? ", new token per request" : ""}`,
  contender: "gateway", target, state, log, freshTokens,
});

/** Every case, in the order they run by default. */
export const CASES: readonly CaseSpec[] = [
  { id: "bare-grpc", label: "bare proxy, same gRPC upstream", contender: "bare-grpc" },
  { id: "bare-http", label: "bare HTTP proxy, trivial HTTP upstream", contender: "bare-http" },
  gw("a", "embedded", "off"),
  gw("a", "redis", "off"),
  gw("b", "embedded", "off"),
  gw("b", "redis", "off"),
  gw("a", "embedded", "line"),
  gw("b", "embedded", "line"),
  gw("a", "embedded", "shipped"),
  gw("a", "embedded", "off", true),
];

/** What the run shares between cases. */
export interface RunContext {
  readonly upstream: Child<UpstreamInfo>;
  readonly redis?: { readonly url: string; readonly pid?: number | undefined };
  readonly credentials: Credentials;
  readonly connections: number;
  readonly warmupSec: number;
  readonly durationSec: number;
  /** Node flags for gateway processes (`--cpu-prof …`), given the case id and attempt. */
  readonly gatewayExecArgv: (caseId: string, attempt: number) => string[];
  readonly runId: string;
}

export interface CaseResult {
  readonly spec: CaseSpec;
  readonly attempt: number;
  readonly load: LoadResult;
  readonly cpu: CpuWindow;
  /** The contender's and the upstream's main threads over the window. */
  readonly contender: ChildWindow;
  readonly upstream: ChildWindow;
  readonly upstreamCalls: number;
  readonly logRecordsShipped: number;
  readonly logs?: GatewayLogStats;
}

/** Answers checked in full through the bare gRPC proxy before the warm-up and after the measured window. */
const GRPC_SAMPLE_BEFORE = 200;
const GRPC_SAMPLE_AFTER = 2_000;

/** Runs one case once (attempt numbers the repeats of a noisy run). */
export async function runCase(spec: CaseSpec, ctx: RunContext, attempt: number): Promise<CaseResult> {
  const child = await startContender(spec, ctx, attempt);
  try {
    const port = (child.info as { port: number }).port;
    const url = `http://127.0.0.1:${port}`;
    let measure: (durationSec: number) => Promise<LoadResult>;
    let checkAfter: (r: LoadResult) => Promise<LoadResult> = async (r) => r;
    if (spec.contender === "bare-grpc") {
      const grpc: Omit<GrpcLoadSpec, "durationSec"> = {
        origin: url, path: GET_PROJECT_PATH, requestFrame: GET_PROJECT_REQUEST_FRAME, responseFrame: GET_PROJECT_RESPONSE_FRAME, connections: ctx.connections,
      };
      const before = await checkGrpcAnswers(grpc, GRPC_SAMPLE_BEFORE);
      if (before.failures > 0) throw new Error(`${spec.id}: ${before.failures} of ${before.checked} GetProject answers wrong, first: ${before.firstFailure}`);
      measure = (durationSec) => runH2load({ ...grpc, durationSec });
      checkAfter = async (r) => withSamples(r, [before, await checkGrpcAnswers(grpc, GRPC_SAMPLE_AFTER)]);
    } else {
      await probe(url, spec, ctx.credentials.tokens[0]!);
      const load = { url, path: PROJECT_PATH, connections: ctx.connections, tokens: ctx.credentials.tokens, rotateTokens: spec.freshTokens === true, expectedBody: EXPECTED_BODY };
      measure = (durationSec) => runLoad({ ...load, durationSec });
    }
    await measure(ctx.warmupSec);
    const pids = new Map([["generator", process.pid], ["contender", child.pid], ["upstream", ctx.upstream.pid]]);
    if (spec.state === "redis" && ctx.redis?.pid) pids.set("redis", ctx.redis.pid);
    const counts0 = await ctx.upstream.request<UpstreamCounts>("counts");
    await Promise.all([child.request("window-start"), ctx.upstream.request("window-start")]);
    const cpu0 = cpuSnapshot(pids);
    const measured = await measure(ctx.durationSec);
    const cpu1 = cpuSnapshot(pids);
    const [contender, upstream] = await Promise.all([child.request<ChildWindow>("window-end"), ctx.upstream.request<ChildWindow>("window-end")]);
    const counts1 = await ctx.upstream.request<UpstreamCounts>("counts");
    const logs = spec.contender === "gateway" ? await child.request<GatewayLogStats>("logs") : undefined;
    const result = await checkAfter(measured);
    return {
      spec, attempt, load: result, cpu: cpuBetween(cpu0, cpu1), contender, upstream,
      upstreamCalls: spec.contender === "bare-http" ? counts1.http - counts0.http : counts1.getProject - counts0.getProject,
      logRecordsShipped: counts1.logRecords - counts0.logRecords,
      ...(logs ? { logs } : {}),
    };
  } finally {
    await child.stop();
  }
}

/** The measured load's result with the samples' checks added (h2load does not see bodies nor trailers). */
function withSamples(r: LoadResult, samples: readonly GrpcSample[]): LoadResult {
  const checked = samples.reduce((n, s) => n + s.checked, 0);
  const failures = samples.reduce((n, s) => n + s.failures, 0);
  const first = samples.find((s) => s.firstFailure)?.firstFailure;
  return {
    ...r,
    mismatches: r.mismatches + failures,
    checkedBodies: r.checkedBodies + checked,
    note: `${r.note ?? ""}; ${checked} answers checked in full (${samples.map((s) => s.checked).join(" before, ")} after): ${failures} wrong${first ? `, first: ${first}` : ""}`,
  };
}

function startContender(spec: CaseSpec, ctx: RunContext, attempt: number): Promise<Child<unknown>> {
  if (spec.contender === "bare-http") return startChild("bare-http-proxy", { upstreamPort: ctx.upstream.info.httpPort });
  if (spec.contender === "bare-grpc") return startChild("bare-grpc-proxy", { upstreamAddress: ctx.upstream.info.grpcAddress });
  if (spec.state === "redis" && !ctx.redis) throw new Error(`${spec.id} needs Redis`);
  const input: GatewayProcessInput = {
    upstream: ctx.upstream.info.grpcAddress,
    cacheTtlSeconds: spec.target === "b" ? 60 : 0,
    shipAccessLog: spec.log === "shipped",
    publicJwk: ctx.credentials.publicJwk,
    ...(spec.state === "redis" ? { redisUrl: ctx.redis!.url } : {}),
    keyPrefix: `mesh:bench:${ctx.runId}:${spec.id}:${attempt}:`,
    logLevel: spec.log === undefined || spec.log === "off" ? "warn" : "info",
  };
  return startChild("gateway-process", input, ctx.gatewayExecArgv(spec.id, attempt));
}

/** One request before the load: the right answer, and for (b) a MISS then a HIT; throws otherwise. */
async function probe(url: string, spec: CaseSpec, token: string): Promise<void> {
  const expectCache = spec.target === "b" ? ["MISS", "HIT"] : [null];
  for (const cache of expectCache) {
    const res = await get(`${url}${PROJECT_PATH}`, token);
    if (res.status !== 200 || res.body !== EXPECTED_BODY) throw new Error(`${spec.id}: GET ${PROJECT_PATH} answered ${res.status} ${res.body.slice(0, 300)}`);
    const xCache = res.headers["x-cache"] ?? null;
    if (spec.contender === "gateway" && xCache !== cache) throw new Error(`${spec.id}: expected X-Cache ${cache}, got ${xCache} (project ${PROJECT_ID})`);
  }
}

/**
 * One GET on a connection of its own, closed after it: an idle keep-alive
 * connection would hold the gateway's shutdown for its whole drain timeout
 * (bench/README.md, Gateway, finding on the listener).
 */
function get(url: string, token: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { authorization: `Bearer ${token}`, connection: "close" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
  });
}

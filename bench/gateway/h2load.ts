/**
 * The load on the bare gRPC proxy (bench/gateway/bare-grpc-proxy.ts): h2load
 * (nghttp2-client) over h2c, N connections with one stream in flight each
 * (closed loop, as autocannon's N HTTP/1.1 connections), every request the
 * same pre-encoded unary GetProject call. h2load sees only the HTTP status,
 * so the answers are checked apart: samples with a node:http2 client before
 * and after the measured window (status, content type, every byte of the
 * body, the `grpc-status: 0` trailer), and over the window the DATA bytes
 * h2load received against the answers it counted.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { quantile } from "../support.js";
import type { LoadResult } from "./load.js";

export interface GrpcLoadSpec {
  /** `http://host:port` of the h2c server. */
  readonly origin: string;
  /** The method's path, `/package.Service/Method`. */
  readonly path: string;
  /** The request body: one length-prefixed gRPC message. */
  readonly requestFrame: Uint8Array;
  /** The body every answer must carry, byte for byte. */
  readonly responseFrame: Uint8Array;
  readonly connections: number;
  readonly durationSec: number;
}

/** The request headers besides the pseudo-headers (h2load adds content-length for -d). */
const GRPC_HEADERS = { "content-type": "application/grpc", te: "trailers", "user-agent": "mesh-bench/1 h2load" };

/** h2load's version, or undefined when it is not installed. */
export async function h2loadVersion(): Promise<string | undefined> {
  try {
    const out = await run(["--version"]);
    return out.stdout.trim();
  } catch {
    return undefined;
  }
}

function run(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => { stdout += c; });
    p.stderr.setEncoding("utf8").on("data", (c: string) => { stderr += c; });
    p.on("error", reject);
    // "close": the process was reaped (its CPU is in our cutime / cstime) and its output read.
    p.on("close", (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`h2load exited with ${code}: ${stderr || stdout}`))));
  });
}

const num = (re: RegExp, text: string): number => {
  const m = re.exec(text);
  if (!m) throw new Error(`h2load output lacks ${re}:\n${text}`);
  return Number(m[1]);
};

/**
 * Runs h2load for `durationSec` (no warm-up of its own: run it once before
 * for that) and reads its summary and per-request log. `mismatches` counts
 * an inconsistent DATA total as one; the samples are added by the caller.
 */
export async function runH2load(spec: GrpcLoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "mesh-bench-h2load-"));
  try {
    const body = join(dir, "request.bin");
    const log = join(dir, "requests.tsv");
    writeFileSync(body, spec.requestFrame);
    const args = [
      "-d", body, ...Object.entries(GRPC_HEADERS).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
      "-c", String(spec.connections), "-m", "1", "-t", "1", "-D", String(spec.durationSec),
      "--log-file", log, `${spec.origin}${spec.path}`,
    ];
    const { stdout } = await run(args);
    const durationSec = num(/finished in ([\d.]+)s/, stdout);
    const done = num(/requests: \d+ total, \d+ started, (\d+) done/, stdout);
    const errored = num(/(\d+) errored/, stdout);
    const timeouts = num(/(\d+) timeout/, stdout);
    const withStatus = [/(\d+) 2xx/, /(\d+) 3xx/, /(\d+) 4xx/, /(\d+) 5xx/].reduce((s, re) => s + num(re, stdout), 0);
    const dataBytes = num(/\((\d+)\) data/, stdout);

    // The log: one row per finished request, "start µs \t status \t µs to the end of the answer".
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    for (const line of readFileSync(log, "utf8").split("\n")) {
      if (!line) continue;
      const [, status = "?", us = "NaN"] = line.split("\t");
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === "200") latencies.push(Number(us) / 1000);
    }
    const ok = latencies.length;
    // Every answer counted carries exactly the expected DATA bytes: the total lies between the finished
    // answers' and those of every answer whose headers came (the last ones in flight when h2load stopped).
    const size = spec.responseFrame.length;
    const dataConsistent = dataBytes >= done * size && dataBytes <= withStatus * size;
    const sorted = latencies.sort((a, b) => a - b);
    return {
      generator: "h2load",
      durationSec,
      ok,
      non2xx: Object.entries(statuses).filter(([s]) => !s.startsWith("2")).reduce((n, [, c]) => n + c, 0),
      errors: errored + timeouts,
      mismatches: dataConsistent ? 0 : 1,
      checkedBodies: 0,
      rps: ok / durationSec,
      latency: {
        p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999),
        max: sorted[sorted.length - 1] ?? Number.NaN, mean: sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length),
      },
      xCache: {},
      statuses,
      generatorEventLoopUtilization: Number.NaN,
      note: `DATA ${dataBytes} B for ${done} finished answers of ${size} B${dataConsistent ? "" : " — INCONSISTENT"}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a sample of checked calls found. */
export interface GrpcSample {
  readonly checked: number;
  readonly failures: number;
  readonly firstFailure?: string;
  readonly ms: number;
}

/**
 * Makes `count` calls through a node:http2 session, `inFlight` at a time, and
 * checks each answer in full: :status 200, an application/grpc content type,
 * the body byte for byte, and the trailer `grpc-status: 0`.
 */
export async function checkGrpcAnswers(spec: Pick<GrpcLoadSpec, "origin" | "path" | "requestFrame" | "responseFrame">, count: number, inFlight = 16): Promise<GrpcSample> {
  const session = http2.connect(spec.origin);
  session.on("error", () => undefined);
  const expected = Buffer.from(spec.responseFrame);
  let failures = 0;
  let firstFailure: string | undefined;
  const fail = (why: string) => {
    failures++;
    firstFailure ??= why;
  };
  const one = () => new Promise<void>((resolve) => {
    const req = session.request({ ":method": "POST", ":path": spec.path, ...GRPC_HEADERS });
    let status = 0;
    let contentType = "";
    let grpcStatus: string | undefined;
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      status = Number(h[":status"]);
      contentType = String(h["content-type"] ?? "");
      if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]); // trailers-only answer
    });
    req.on("trailers", (t) => { grpcStatus = String(t["grpc-status"] ?? ""); });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", (e: Error) => { fail(`stream error ${e.message}`); resolve(); });
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (status !== 200) fail(`:status ${status}`);
      else if (!contentType.startsWith("application/grpc")) fail(`content-type ${contentType}`);
      else if (grpcStatus !== "0") fail(`grpc-status ${grpcStatus}`);
      else if (!body.equals(expected)) fail(`body ${body.length} B ${body.subarray(0, 40).toString("hex")}… differs from the expected ${expected.length} B`);
      resolve();
    });
    req.end(spec.requestFrame);
  });
  const t0 = performance.now();
  let started = 0;
  try {
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (started < count) {
        started++;
        await one();
      }
    }));
  } finally {
    session.close();
  }
  return { checked: count, failures, ...(firstFailure !== undefined ? { firstFailure } : {}), ms: performance.now() - t0 };
}

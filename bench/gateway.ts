/**
 * `npm run bench`: the gateway against a bare Node.js reverse proxy in front
 * of the same upstream (bench/README.md, "Gateway"). Starts the upstream
 * (gRPC doubles + a plain HTTP JSON server) and each contender in processes
 * of their own: the bare node:http2 proxy in front of the gRPC upstream,
 * driven by h2load with the GetProject call (the targets' baseline); the bare
 * node:http proxy in front of the HTTP server (context) and the gateway, both
 * driven by autocannon from this process. Prints a markdown table and the
 * verdicts on the issue's targets.
 *
 *   node_modules/.bin/tsx bench/gateway.ts [--cases bare-grpc,bare-http,a-embedded,…] [--connections 64]
 *     [--duration 15] [--warmup 3] [--redis URL|none] [--max-others 15] [--attempts 3]
 *     [--profile DIR] [--json FILE]
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CASES, runCase, type CaseResult, type RunContext } from "./gateway/cases.js";
import { startChild } from "./gateway/child.js";
import { makeCredentials } from "./gateway/fixture.js";
import { h2loadVersion } from "./gateway/h2load.js";
import { openBenchRedis } from "./gateway/redis.js";
import { httpBaselineRatios, progressLine, TABLE_HEAD, tableRow, verdicts } from "./gateway/report.js";
import type { UpstreamInfo } from "./gateway/upstream.js";

const { values: opt } = parseArgs({
  options: {
    cases: { type: "string", default: CASES.map((c) => c.id).join(",") },
    connections: { type: "string", default: "64" },
    duration: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    redis: { type: "string" },
    "max-others": { type: "string", default: "15" },
    attempts: { type: "string", default: "3" },
    profile: { type: "string" },
    json: { type: "string" },
  },
});

const wanted = opt.cases.split(",").map((s) => s.trim()).filter(Boolean);
const unknown = wanted.filter((id) => !CASES.some((c) => c.id === id));
if (unknown.length > 0) throw new Error(`unknown cases ${unknown.join(", ")}; known: ${CASES.map((c) => c.id).join(", ")}`);
const maxOthers = Number(opt["max-others"]);
const attempts = Math.max(1, Number(opt.attempts));
const profileDir = opt.profile ? resolve(opt.profile) : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });

const redis = wanted.some((id) => id.includes("redis")) ? await openBenchRedis(opt.redis) : undefined;
const cases = CASES.filter((c) => wanted.includes(c.id) && (c.state !== "redis" || redis));
if (cases.length < wanted.length) console.log("Redis: none (no --redis, REDIS_URL, TEST_REDIS_URL nor redis-server): the Redis cases are skipped.");
const h2load = cases.some((c) => c.contender === "bare-grpc") ? await h2loadVersion() : undefined;
if (cases.some((c) => c.contender === "bare-grpc") && !h2load) {
  throw new Error("the bare-grpc case needs h2load (Debian: apt-get install -y nghttp2-client); or leave it out: --cases bare-http,a-embedded,…");
}

const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8" }).trim();
const dirty = git("status", "--porcelain", "--", "gateway", "lib").split("\n").filter(Boolean).length;
console.log(`Gateway benchmark, ${new Date().toISOString()}, code at ${git("rev-parse", "--short", "HEAD")}${dirty ? ` + ${dirty} uncommitted files under gateway/ and lib/` : ""}`);
console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`);
console.log(`Load: ${opt.connections} connections, one request in flight on each (h2load${h2load ? ` ${h2load.replace(/^h2load\s*/, "")}` : ""} for the bare gRPC proxy, autocannon for the rest), ${opt.warmup} s warm-up + ${opt.duration} s measured per case; repeated (at most ${attempts} attempts) while others' CPU > ${maxOthers} % of a core.`);
if (redis) console.log(`Redis ${redis.version}: ${redis.origin}${redis.pid ? ` (pid ${redis.pid})` : " (its CPU is not attributed)"}`);

const credentials = await makeCredentials(cases.some((c) => c.freshTokens) ? 20_000 : 1);
const upstream = await startChild<UpstreamInfo>("upstream", {});
const ctx: RunContext = {
  upstream, credentials,
  ...(redis ? { redis: { url: redis.url, pid: redis.pid } } : {}),
  connections: Number(opt.connections), warmupSec: Number(opt.warmup), durationSec: Number(opt.duration),
  gatewayExecArgv: (id, attempt) => (profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${id}-${attempt}.cpuprofile`] : []),
  runId: randomBytes(4).toString("hex"),
};

const results: CaseResult[] = [];
const all: CaseResult[] = [];
try {
  for (const spec of cases) {
    let best: CaseResult | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const r = await runCase(spec, ctx, attempt);
      all.push(r);
      console.log(progressLine(r));
      if (!best || r.cpu.othersPct < best.cpu.othersPct) best = r;
      if (r.cpu.othersPct <= maxOthers) break;
      if (attempt < attempts) console.log(`  others used ${r.cpu.othersPct.toFixed(0)} % of a core: repeating`);
    }
    results.push(best!);
  }
} finally {
  await upstream.stop();
  await redis?.stop();
}

console.log(`\n${TABLE_HEAD.join("\n")}`);
for (const r of results) console.log(tableRow(r));
console.log("\nCPU in % of one core (the machine has 200 %), and in µs per answered request; ELU = the contender's event-loop utilization.");
const judged = verdicts(results);
if (judged.length > 0) console.log("\nTargets at 64 connections, against the bare proxy in front of the same gRPC upstream:");
else if (results.some((r) => r.spec.target)) console.log("\nNo verdicts: the targets' baseline (bare-grpc) was not run.");
for (const v of judged) console.log(`- ${v.label}: ${v.text}`);
const context = httpBaselineRatios(results);
if (context.length > 0) console.log("\nContext only (not the targets), against the bare HTTP proxy in front of the trivial HTTP upstream:");
for (const line of context) console.log(`- ${line}`);
if (opt.json) writeFileSync(opt.json, JSON.stringify(all.map((r) => ({ ...r, cpu: { ...r.cpu, processes: Object.fromEntries(r.cpu.processes) } })), null, 2));
if (profileDir) console.log(`\nCPU profiles of the gateway processes: ${join(profileDir, "*.cpuprofile")} (node_modules/.bin/tsx bench/profile-top.ts FILE)`);

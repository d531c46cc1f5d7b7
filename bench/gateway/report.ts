/**
 * The gateway benchmark's output: one markdown row per case, the verdicts on
 * the issue's targets against the bare proxy in front of the same gRPC
 * upstream, and for context the ratios to the bare HTTP proxy in front of the
 * trivial HTTP upstream.
 */
import type { CaseResult } from "./cases.js";

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const msOf = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : "n/a");
const pct = (x: number | undefined) => (x === undefined ? "–" : `${x.toFixed(0)} %`);

/** CPU µs per answered request of a process at `cpuPct` % of one core. */
export const usPerRequest = (cpuPct: number | undefined, rps: number) => (cpuPct === undefined || rps <= 0 ? undefined : (cpuPct * 10_000) / rps);

function cpuCell(r: CaseResult, name: string): string {
  const p = r.cpu.processes.get(name);
  const us = usPerRequest(p, r.load.rps);
  return p === undefined ? "–" : `${pct(p)} (${us!.toFixed(0)} µs)`;
}

export const TABLE_HEAD = [
  "| case | client (load generator) | req/s | p50 ms | p99 ms | non-2xx / errors / wrong body | bodies checked | X-Cache | upstream calls | contender CPU (per req) | contender ELU | upstream CPU (per req) | Redis CPU | generator CPU | others' CPU | attempt |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
];

const clientOf = (r: CaseResult) => (r.load.generator === "h2load" ? "gRPC GetProject over h2c (h2load)" : r.spec.contender === "gateway" ? "REST GET, HTTP/1.1 (autocannon)" : "HTTP/1.1 GET (autocannon)");
const checkedOf = (r: CaseResult) => (r.load.generator === "h2load" ? `${int(r.load.checkedBodies)} sampled` : "all");

/** One markdown row. */
export function tableRow(r: CaseResult): string {
  const l = r.load;
  const cache = Object.entries(l.xCache).filter(([k]) => k !== "-").map(([k, n]) => `${k} ${int(n)}`).join(", ") || "–";
  return `| ${r.spec.label} | ${clientOf(r)} | **${int(l.rps)}** | ${msOf(l.latency.p50)} | ${msOf(l.latency.p99)} | ${l.non2xx} / ${l.errors} / ${l.mismatches} | ${checkedOf(r)} | ${cache} | ${int(r.upstreamCalls)}`
    + `${r.logRecordsShipped > 0 ? ` (+${int(r.logRecordsShipped)} log records)` : ""} | ${cpuCell(r, "contender")} | ${r.contender.eventLoopUtilization.toFixed(2)} | ${cpuCell(r, "upstream")}`
    + ` | ${r.spec.state === "redis" ? cpuCell(r, "redis") : "–"} | ${cpuCell(r, "generator")} | ${pct(r.cpu.othersPct)} | ${r.attempt} |`;
}

export interface Verdict {
  readonly label: string;
  readonly met: boolean;
  readonly text: string;
}

/**
 * The targets (issue): (a) at least half the bare proxy's rate, with p99 at
 * most twice the bare proxy's; (b) at least the bare proxy's rate — the bare
 * proxy being in front of the same upstream: the gRPC one (bare-grpc).
 */
export function verdicts(results: readonly CaseResult[]): Verdict[] {
  const bare = results.find((r) => r.spec.contender === "bare-grpc");
  if (!bare) return [];
  const out: Verdict[] = [];
  const bareUs = usPerRequest(bare.cpu.processes.get("contender"), bare.load.rps);
  for (const r of results) {
    if (!r.spec.target) continue;
    const rate = r.load.rps / bare.load.rps;
    const p99 = r.load.latency.p99 / bare.load.latency.p99;
    const clean = r.load.non2xx === 0 && r.load.errors === 0 && r.load.mismatches === 0;
    const us = usPerRequest(r.cpu.processes.get("contender"), r.load.rps);
    // Per core: the rate each would reach with a core to itself (its CPU per request), whatever the upstream and generator cost.
    const perCore = bareUs !== undefined && us !== undefined ? `; per core ${(bareUs / us).toFixed(2)} × bare (${us.toFixed(0)} vs ${bareUs.toFixed(0)} µs CPU per request)` : "";
    const failed = clean ? "" : ", with failed requests";
    const met = r.spec.target === "a" ? rate >= 0.5 && p99 <= 2 && clean : rate >= 1 && clean;
    const measured = r.spec.target === "a"
      ? `${int(r.load.rps)} req/s = ${rate.toFixed(2)} × bare (target ≥ 0.50), p99 ${msOf(r.load.latency.p99)} ms = ${p99.toFixed(2)} × bare (target ≤ 2.00)`
      : `${int(r.load.rps)} req/s = ${rate.toFixed(2)} × bare (target ≥ 1.00; p99 ${msOf(r.load.latency.p99)} ms = ${p99.toFixed(2)} × bare)`;
    out.push({ label: r.spec.label, met, text: `${measured}${failed}: **${met ? "met" : "not met"}**${perCore}` });
  }
  return out;
}

/**
 * Context, not the targets: each gateway case's rate and p99 as multiples of
 * the bare HTTP proxy's in front of the trivial HTTP upstream.
 */
export function httpBaselineRatios(results: readonly CaseResult[]): string[] {
  const bare = results.find((r) => r.spec.contender === "bare-http");
  if (!bare) return [];
  return results.filter((r) => r.spec.target).map((r) =>
    `${r.spec.label}: ${(r.load.rps / bare.load.rps).toFixed(2)} × its rate, p99 ${(r.load.latency.p99 / bare.load.latency.p99).toFixed(2)} ×`);
}

/** The progress line printed after each attempt. */
export function progressLine(r: CaseResult): string {
  const l = r.load;
  const procs = [...r.cpu.processes].map(([k, v]) => `${k} ${pct(v)}`).join(", ");
  return `  ${r.spec.id} #${r.attempt}: ${int(l.rps)} req/s, p50 ${msOf(l.latency.p50)} ms, p99 ${msOf(l.latency.p99)} ms, p99.9 ${msOf(l.latency.p999)} ms; `
    + `non-2xx ${l.non2xx}, errors ${l.errors}, wrong body ${l.mismatches}; CPU ${procs}; contender ELU ${r.contender.eventLoopUtilization.toFixed(2)}, `
    + `main thread ${pct((r.contender.mainThreadCpuMs / r.cpu.wallMs) * 100)}; upstream ELU ${r.upstream.eventLoopUtilization.toFixed(2)}; `
    + `${l.generator === "autocannon" ? `generator ELU ${l.generatorEventLoopUtilization.toFixed(2)}` : l.generator}${l.note ? ` (${l.note})` : ""}; `
    + `others ${pct(r.cpu.othersPct)}, softirq ${pct(r.cpu.softirqPct)}, steal ${pct(r.cpu.stealPct)}, idle ${pct(r.cpu.idlePct)}`
    + (r.logs && r.logs.problems > 0 ? `; ${r.logs.problems} warnings, first: ${r.logs.firstProblems[0]}` : "");
}

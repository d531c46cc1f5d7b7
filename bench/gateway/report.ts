/**
 * The gateway benchmark's output: one markdown row per case and the
 * verdicts on the issue's targets against the bare proxy.
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
  "| case | req/s | p50 ms | p99 ms | non-2xx / errors / wrong body | X-Cache | upstream calls | contender CPU (per req) | contender ELU | upstream CPU (per req) | Redis CPU | generator CPU | others' CPU | attempt |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
];

/** One markdown row. */
export function tableRow(r: CaseResult): string {
  const l = r.load;
  const cache = Object.entries(l.xCache).filter(([k]) => k !== "-").map(([k, n]) => `${k} ${int(n)}`).join(", ") || "–";
  return `| ${r.spec.label} | **${int(l.rps)}** | ${msOf(l.latency.p50)} | ${msOf(l.latency.p99)} | ${l.non2xx} / ${l.errors} / ${l.mismatches} | ${cache} | ${int(r.upstreamCalls)}`
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
 * most twice the bare proxy's; (b) at least the bare proxy's rate.
 */
export function verdicts(results: readonly CaseResult[]): Verdict[] {
  const bare = results.find((r) => r.spec.contender === "bare");
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

/** The progress line printed after each attempt. */
export function progressLine(r: CaseResult): string {
  const l = r.load;
  const procs = [...r.cpu.processes].map(([k, v]) => `${k} ${pct(v)}`).join(", ");
  return `  ${r.spec.id} #${r.attempt}: ${int(l.rps)} req/s, p50 ${msOf(l.latency.p50)} ms, p99 ${msOf(l.latency.p99)} ms, p99.9 ${msOf(l.latency.p999)} ms; `
    + `non-2xx ${l.non2xx}, errors ${l.errors}, wrong body ${l.mismatches}; CPU ${procs}; contender ELU ${r.contender.eventLoopUtilization.toFixed(2)}, `
    + `main thread ${pct((r.contender.mainThreadCpuMs / r.cpu.wallMs) * 100)}; upstream ELU ${r.upstream.eventLoopUtilization.toFixed(2)}; generator ELU ${l.generatorEventLoopUtilization.toFixed(2)}; `
    + `others ${pct(r.cpu.othersPct)}, softirq ${pct(r.cpu.softirqPct)}, steal ${pct(r.cpu.stealPct)}, idle ${pct(r.cpu.idlePct)}`
    + (r.logs && r.logs.problems > 0 ? `; ${r.logs.problems} warnings, first: ${r.logs.firstProblems[0]}` : "");
}

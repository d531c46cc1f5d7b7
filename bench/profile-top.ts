/**
 * Summarizes a V8 `.cpuprofile` (node --cpu-prof): self time by area (the
 * package or project directory a function lives in) and the top functions.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/ingest.ts --mode stream --concurrency 2
 *   node_modules/.bin/tsx bench/profile-top.ts /tmp/prof/CPU.*.cpuprofile [--top 25]
 *
 * One file per thread: the benchmark's main thread runs the service, the
 * worker thread the client.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

function areaOf(url: string, fn: string): string {
  if (fn === "(idle)") return "(idle)";
  if (fn === "(garbage collector)") return "(garbage collector)";
  if (fn === "(program)") return "(program: native, uncategorized)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/work\/[^/]+\/((?:services\/[^/]+)|lib|bench|gen|gateway)\//.exec(url) ?? /\/((?:services\/[^/]+)|lib|bench|gen|gateway)\/[^/]+$/.exec(url);
  if (own) return own[1]!;
  if (url.startsWith("node:") || url === "") return "node internals";
  return url;
}

function summarize(file: string, top: number): void {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === "(idle)").reduce((a, [, t]) => a + t, 0);
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + t);
    const key = `${functionName || "(anonymous)"} ${url.replace(/^.*node_modules\//, "").replace(/^file:\/\/\/work\/[^/]+\//, "")}:${lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + t);
  }
  const busy = total - idle;
  const pct = (t: number) => `${((t / busy) * 100).toFixed(1).padStart(5)} %`;
  console.log(`\n${file}\n  ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (shares below are of busy time)`);
  console.log("  by area:");
  for (const [a, t] of [...areas].filter(([a]) => a !== "(idle)").sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`    ${pct(t)}  ${a}`);
  console.log(`  top ${top} functions (self time):`);
  for (const [f, t] of [...fns].filter(([f]) => !f.startsWith("(idle)")).sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`    ${pct(t)}  ${f}`);
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" } } });
if (positionals.length === 0) {
  console.error("usage: tsx bench/profile-top.ts FILE.cpuprofile… [--top N]");
  process.exitCode = 2;
}
for (const file of positionals) summarize(file, Number(values.top));

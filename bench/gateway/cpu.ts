/**
 * CPU over a measured window, from /proc: each of the benchmark's own
 * processes, and what the rest of the machine used meanwhile ("others' CPU":
 * other engineers' test runs on this shared 2-core machine).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { processCpuMs } from "../support.js";

/** /proc/stat's first line: jiffies per state, all CPUs together. */
interface MachineTimes { user: number; system: number; idle: number; softirq: number; steal: number; total: number }

function machineTimes(): MachineTimes {
  const c = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = c;
  return { user: user + nice, system: system + irq, idle: idle + iowait, softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

let clockTicks: number | undefined;
const ticksPerSecond = () => (clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100);

/**
 * CPU time (ms) of this process and of its children it has reaped (cutime +
 * cstime): the load generator, which is this process (autocannon) or h2load,
 * run as a child and reaped before the window's end.
 */
function selfAndReapedChildrenCpuMs(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) ": utime 11, stime 12, cutime 13, cstime 14.
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / ticksPerSecond();
}

export interface CpuSnapshot {
  readonly at: number;
  readonly processes: ReadonlyMap<string, number | undefined>;
  readonly machine: MachineTimes;
}

/** CPU time so far of the named processes (ms; this process with its reaped children) and of the machine. */
export function cpuSnapshot(pids: ReadonlyMap<string, number>): CpuSnapshot {
  const processes = new Map<string, number | undefined>();
  for (const [name, pid] of pids) processes.set(name, pid === process.pid ? selfAndReapedChildrenCpuMs() : processCpuMs(pid));
  return { at: performance.now(), processes, machine: machineTimes() };
}

/** CPU between two snapshots, each in % of one core (the machine has 100 % × cores). */
export interface CpuWindow {
  readonly wallMs: number;
  /** Per named process: % of one core; undefined when it could not be read. */
  readonly processes: ReadonlyMap<string, number | undefined>;
  /**
   * User + system time of every other process: the machine's, less ours.
   * Softirq (loopback packet processing, mostly caused by the benchmark's own
   * traffic) is counted apart.
   */
  readonly othersPct: number;
  readonly softirqPct: number;
  /** Time the hypervisor gave to other guests. */
  readonly stealPct: number;
  /** Idle share of the whole machine, % of one core. */
  readonly idlePct: number;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuWindow {
  const wallMs = b.at - a.at;
  const processes = new Map<string, number | undefined>();
  let ours = 0;
  for (const [name, t0] of a.processes) {
    const t1 = b.processes.get(name);
    const pct = t0 !== undefined && t1 !== undefined ? ((t1 - t0) / wallMs) * 100 : undefined;
    processes.set(name, pct);
    ours += pct ?? 0;
  }
  const total = Math.max(1, b.machine.total - a.machine.total);
  const share = (k: keyof MachineTimes) => ((b.machine[k] - a.machine[k]) / total) * 100 * availableParallelism();
  return {
    wallMs,
    processes,
    othersPct: Math.max(0, share("user") + share("system") - ours),
    softirqPct: share("softirq"),
    stealPct: share("steal"),
    idlePct: share("idle"),
  };
}

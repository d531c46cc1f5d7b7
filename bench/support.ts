/**
 * Shared pieces of the hand-run benchmarks (bench/README.md): a seeded PRNG,
 * a generator of realistic request records, a timing DocumentDb wrapper,
 * statistics, and CPU / memory probes for this process and the database
 * server. Nothing here is used by the services or the tests.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { MongoClient } from "mongodb";
import type { ProjectDirectory } from "../lib/project-directory.js";
import type { LogEntry } from "../lib/request-log.js";
import type { DocumentCollection, DocumentDb } from "../lib/stores/documents.js";

// ---------------------------------------------------------------------------
// Deterministic randomness

/** mulberry32: a small, fast, seeded 32-bit PRNG (same seed → same sequence). */
export function createRng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  const normal = (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return {
    next,
    int: (n: number): number => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    normal,
    /** Lognormal with the given median and shape σ. */
    lognormal: (median: number, sigma: number): number => median * Math.exp(sigma * normal()),
    hex: (chars: number): string => {
      let s = "";
      while (s.length < chars) s += (Math.floor(next() * 0x100000000) >>> 0).toString(16).padStart(8, "0");
      return s.slice(0, chars);
    },
  };
}

export type Rng = ReturnType<typeof createRng>;

/** Picks from weighted choices with a precomputed cumulative table. */
function weighted<T>(items: readonly (readonly [T, number])[]): (rng: Rng) => T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const [, w] of items) cumulative.push((acc += w / total));
  return (rng) => {
    const x = rng.next();
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return items[lo]![0];
  };
}

// ---------------------------------------------------------------------------
// Realistic traffic

/** A request record as the gateway produces it (no ingest time yet). */
export type Sample = Omit<LogEntry, "ingestedAt">;

interface RouteSpec {
  readonly method: string;
  readonly route: string;
  readonly service: string;
  /** Median latency in ms. */
  readonly median: number;
  readonly cacheable: boolean;
}

/** 50 route templates across the mesh's services (with a Zipf-like popularity). */
const ROUTES: readonly RouteSpec[] = (() => {
  const r = (method: string, route: string, service: string, median: number, cacheable = false): RouteSpec =>
    ({ method, route, service, median, cacheable });
  const list = [
    r("GET", "/api/v1/projects", "project", 18, true),
    r("GET", "/api/v1/projects/{id}", "project", 12, true),
    r("GET", "/api/v1/logs", "logging", 35),
    r("POST", "/api/v1/logs", "logging", 6),
    r("GET", "/api/v1/analytics/summary", "analytics", 40, true),
    r("POST", "/api/v1/auth/refresh", "auth", 9),
    r("GET", "/api/v1/auth/me", "auth", 5, true),
    r("POST", "/api/v1/logs/batch", "logging", 25),
    r("GET", "/api/v1/analytics/requests", "analytics", 45, true),
    r("GET", "/api/v1/logs/{request_id}", "logging", 8),
    r("POST", "/api/v1/auth/login", "auth", 120),
    r("GET", "/api/v1/projects/{id}/keys", "project", 15, true),
    r("GET", "/api/v1/analytics/latency", "analytics", 42, true),
    r("GET", "/api/v1/logs/errors", "logging", 30),
    r("GET", "/api/v1/analytics/top-endpoints", "analytics", 55, true),
    r("PATCH", "/api/v1/projects/{id}", "project", 22),
    r("POST", "/api/v1/projects", "project", 30),
    r("GET", "/api/v1/analytics/error-rate", "analytics", 44, true),
    r("GET", "/api/v1/projects/{id}/routes", "project", 14, true),
    r("POST", "/api/v1/projects/{id}/keys", "project", 28),
    r("GET", "/api/v1/analytics/top-users", "analytics", 50, true),
    r("GET", "/api/v1/logs:tail", "logging", 900),
    r("POST", "/api/v1/auth/register", "auth", 140),
    r("POST", "/api/v1/auth/logout", "auth", 7),
    r("DELETE", "/api/v1/projects/{id}/keys/{key_id}", "project", 20),
    r("GET", "/api/v1/analytics/api-keys", "analytics", 48, true),
    r("GET", "/api/v1/alerts/rules", "analytics", 16, true),
    r("POST", "/api/v1/alerts/rules", "analytics", 24),
    r("GET", "/api/v1/alerts/events", "analytics", 19),
    r("POST", "/api/v1/alerts/events/{id}:acknowledge", "analytics", 17),
    r("PUT", "/api/v1/projects/{id}/routes/{route_id}", "project", 26),
    r("DELETE", "/api/v1/projects/{id}", "project", 35),
    r("GET", "/api/v1/alerts/rules/{id}", "analytics", 11, true),
    r("PATCH", "/api/v1/alerts/rules/{id}", "analytics", 21),
    r("DELETE", "/api/v1/alerts/rules/{id}", "analytics", 18),
    r("POST", "/api/v1/projects/{id}/keys/{key_id}:rotate", "project", 33),
    r("GET", "/api/v1/users/me", "auth", 6, true),
    r("PATCH", "/api/v1/users/me", "auth", 25),
    r("POST", "/api/v1/users/me/password", "auth", 160),
    r("GET", "/api/v1/projects/{id}/members", "project", 13, true),
    r("POST", "/api/v1/projects/{id}/members", "project", 27),
    r("DELETE", "/api/v1/projects/{id}/members/{user_id}", "project", 23),
    r("GET", "/api/v1/alerts/events:watch", "analytics", 1200),
    r("GET", "/healthz", "", 1),
    r("GET", "/readyz", "", 1),
    r("GET", "/api/v1/projects/{id}/usage", "project", 60, true),
    r("POST", "/api/v1/auth/verify", "auth", 4),
    r("GET", "/api/v1/status", "", 2, true),
    r("GET", "/api/v1/projects/{id}/routes/{route_id}", "project", 12, true),
    r("OPTIONS", "/api/v1/logs", "", 1),
  ];
  if (list.length !== 50) throw new Error(`expected 50 routes, have ${list.length}`);
  return list;
})();

/** Anonymous routes (no user, no project): sign-in, sign-up and probes. */
const ANONYMOUS_ROUTES = new Set(["/api/v1/auth/login", "/api/v1/auth/register", "/healthz", "/readyz", "/api/v1/status"]);

const STATUS = weighted<number>([
  [200, 70], [201, 8], [204, 4], [304, 2], [400, 3], [401, 2], [403, 1], [404, 3], [429, 2],
  [500, 2], [502, 1], [503, 1.5], [504, 0.5],
]);

const ERROR_CODES: Record<number, string> = {
  400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
};

const USER_AGENTS = [
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0",
  "curl/8.11.1",
  "python-requests/2.33.0",
  "Go-http-client/2.0",
  "mesh-sdk-js/1.4.2 node/24.21.0",
];

export interface TrafficShape {
  readonly projects: number;
  readonly users: number;
  readonly keysPerProject: number;
}

export const DEFAULT_SHAPE: TrafficShape = { projects: 10, users: 1000, keysPerProject: 3 };

/**
 * Generates request records: unique request IDs (`<prefix>-<n>`), ~10
 * projects with ~100 users each, 50 routes with Zipf-like popularity, a status
 * mix with 5 % 5xx and 2 % 429, lognormal latencies per route (cache hits
 * faster, 5xx slower), ~30 % of the requests made with an API key and ~5 %
 * anonymous. Fully determined by the seed.
 */
export function createTraffic(seed: number, prefix: string, shape: TrafficShape = DEFAULT_SHAPE) {
  const rng = createRng(seed);
  const projects = Array.from({ length: shape.projects }, (_, i) => `prj_${createRng(1000 + i).hex(12)}`);
  const users = Array.from({ length: shape.users }, (_, i) => `usr_${String(i).padStart(4, "0")}${createRng(5000 + i).hex(6)}`);
  const keys = projects.map((p, i) => Array.from({ length: shape.keysPerProject }, (_, k) => `key_${createRng(9000 + i * 31 + k).hex(10)}`));
  const route = weighted(ROUTES.map((r, i) => [r, 1 / (i + 1)] as const));
  let seq = 0;

  const pathOf = (template: string): string =>
    template.replace(/\{([a-z_]+)\}/g, (_m, name: string) =>
      name === "id" ? projects[rng.int(projects.length)]! : `${name.replace(/_id$/, "")}_${rng.hex(8)}`);

  return {
    projects,
    users,
    /** One record at `timestamp`. */
    next(timestamp: Date): Sample {
      const r = route(rng);
      const anonymous = ANONYMOUS_ROUTES.has(r.route);
      const userIndex = rng.int(users.length);
      const projectIndex = userIndex % projects.length;
      const withKey = !anonymous && rng.next() < 0.3;
      const status = STATUS(rng);
      const cacheStatus = r.cacheable && r.method === "GET" && status < 400
        ? (rng.next() < 0.6 ? "HIT" : "MISS") : r.cacheable ? "BYPASS" : "";
      let latency = rng.lognormal(r.median, 0.8);
      if (cacheStatus === "HIT") latency /= 6;
      if (status >= 500) latency *= 3;
      if (status === 429 || status === 401) latency = rng.lognormal(0.8, 0.5);
      return {
        requestId: `${prefix}-${(seq++).toString(36)}`,
        traceId: rng.hex(32),
        spanId: rng.hex(16),
        timestamp,
        method: r.method,
        path: pathOf(r.route),
        route: r.route,
        statusCode: status,
        latency: Math.round(latency * 1000) / 1000,
        ip: `10.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`,
        userAgent: USER_AGENTS[userIndex % USER_AGENTS.length]!,
        userId: anonymous ? "" : users[userIndex]!,
        projectId: anonymous ? "" : projects[projectIndex]!,
        apiKeyId: withKey ? keys[projectIndex]![rng.int(shape.keysPerProject)]! : "",
        cacheStatus,
        rateLimited: status === 429,
        upstreamService: status === 429 || status === 401 ? "" : r.service,
        bytesIn: r.method === "GET" ? 0 : Math.round(rng.lognormal(400, 1)),
        bytesOut: status === 204 || status === 304 ? 0 : Math.round(rng.lognormal(1800, 1.2)),
        errorCode: ERROR_CODES[status] ?? "",
      };
    },
  };
}

/** A ProjectDirectory that knows no projects (the benchmarks call as admin or as the mesh itself). */
export const emptyDirectory: ProjectDirectory = { projectIdsOf: async () => [] };

// ---------------------------------------------------------------------------
// Statistics and formatting

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export interface Distribution { n: number; p50: number; p95: number; p99: number; max: number; mean: number }

export function distribution(values: readonly number[]): Distribution {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length, p50: quantile(s, 0.5), p95: quantile(s, 0.95), p99: quantile(s, 0.99), max: s[s.length - 1] ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
  };
}

export const ms = (x: number, digits = 1): string => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : "n/a");
export const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(0)} MiB`;
export const int = (x: number): string => Math.round(x).toLocaleString("en-US");

export async function time<R>(fn: () => Promise<R>): Promise<[R, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

// ---------------------------------------------------------------------------
// Timing wrapper of the document store port

export interface OpStats { calls: number; totalMs: number; durations: number[]; docs: number }

/**
 * Wraps a DocumentDb so every collection operation is timed per method (the
 * service code under test is unchanged; it just receives this db). `onInsert`
 * sees each insertMany's completion with the number of documents stored.
 * `keepIndex` (what-if experiments) skips ensureIndex for the names it refuses.
 */
export function instrumentDb(db: DocumentDb, onInsert?: (inserted: number, at: number, durationMs: number) => void,
  keepIndex: (name: string) => boolean = () => true) {
  const stats = new Map<string, OpStats>();
  const record = (name: string, t0: number, docs: number) => {
    let s = stats.get(name);
    if (!s) stats.set(name, (s = { calls: 0, totalMs: 0, durations: [], docs: 0 }));
    const d = performance.now() - t0;
    s.calls++;
    s.totalMs += d;
    s.docs += docs;
    if (s.durations.length < 200_000) s.durations.push(d);
    return d;
  };
  const wrapped: DocumentDb = {
    kind: db.kind,
    ping: () => db.ping(),
    close: () => db.close(),
    collection<T extends import("../lib/stores/documents.js").Doc>(name: string): DocumentCollection<T> {
      const inner = db.collection<T>(name);
      const out = {} as Record<string, unknown>;
      for (const method of Object.keys(inner) as (keyof DocumentCollection<T>)[]) {
        const fn = inner[method] as (...args: unknown[]) => Promise<unknown>;
        out[method] = async (...args: unknown[]) => {
          // What-if runs leave some indexes out (the service's code is unchanged).
          if (method === "ensureIndex" && !keepIndex((args[1] as { name: string }).name)) return undefined;
          const t0 = performance.now();
          const result = await fn(...args);
          const docs = method === "insertMany" ? (result as { inserted: number }).inserted
            : Array.isArray(result) ? result.length : 0;
          const d = record(`${name}.${method}`, t0, docs);
          if (method === "insertMany") onInsert?.(docs, Date.now(), d);
          return result;
        };
      }
      return out as unknown as DocumentCollection<T>;
    },
  };
  return { db: wrapped, stats };
}

// ---------------------------------------------------------------------------
// CPU and memory of this process and of the database server

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU time (ms, user + system) of a process, from /proc; undefined if it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ": state is field 0, utime 11, stime 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/**
 * Waits until a server process is idle (under 20 % of a core over 2 s), at
 * most `maxMs`: a query the client gave up on (socket timeout) keeps running on
 * FerretDB, and would otherwise load the next measurement, or crash FerretDB
 * (SIGBUS in SQLite's WAL index) if its database were dropped meanwhile.
 */
export async function waitServerIdle(pid: number | undefined, maxMs = 300_000): Promise<number> {
  if (!pid) return 0;
  const t0 = performance.now();
  for (;;) {
    const a = processCpuMs(pid);
    await new Promise((r) => setTimeout(r, 2_000));
    const b = processCpuMs(pid);
    if (a === undefined || b === undefined || (b - a) / 2_000 < 0.2 || performance.now() - t0 > maxMs) return performance.now() - t0;
  }
}

/** Resident set size of a process in bytes, from /proc. */
export function processRss(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of the process listening on 127.0.0.1:`port` (Linux /proc; needs access to its fds). */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const localPort = Number.parseInt(cols[1]!.split(":")[1] ?? "", 16);
      if (localPort === port && cols[3] === "0A") inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(entry);
      } catch { /* fd closed meanwhile */ }
    }
  }
  return undefined;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineJiffies(): { busy: number; total: number } | undefined {
  try {
    const cols = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (cols[3] ?? 0) + (cols[4] ?? 0);
    const total = cols.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * Samples CPU (this process, this thread, a server process, the whole
 * machine: what other processes used shows how noisy a run was) over a window and
 * the peak RSS of this process and the server, every 250 ms.
 */
export function createResourceMeter(serverPid: number | undefined) {
  let cpu0 = process.cpuUsage();
  let thread0 = process.threadCpuUsage();
  let server0 = serverPid ? processCpuMs(serverPid) : undefined;
  let machine0 = machineJiffies();
  let wall0 = performance.now();
  let elu0 = performance.eventLoopUtilization();
  let rssMax = 0;
  let serverRssMax = 0;
  const sample = () => {
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
    if (serverPid) serverRssMax = Math.max(serverRssMax, processRss(serverPid) ?? 0);
  };
  const timer = setInterval(sample, 250);
  timer.unref();
  return {
    /** Starts the measured window. */
    reset() {
      cpu0 = process.cpuUsage();
      thread0 = process.threadCpuUsage();
      server0 = serverPid ? processCpuMs(serverPid) : undefined;
      machine0 = machineJiffies();
      wall0 = performance.now();
      elu0 = performance.eventLoopUtilization();
      rssMax = 0;
      serverRssMax = 0;
      sample();
    },
    /** Ends the window: CPU as a percentage of one core over it. */
    read() {
      sample();
      const wall = performance.now() - wall0;
      const cpu = process.cpuUsage(cpu0);
      const thread = process.threadCpuUsage(thread0);
      const server1 = serverPid ? processCpuMs(serverPid) : undefined;
      const machine1 = machineJiffies();
      const pct = (micros: number) => (micros / 1000 / wall) * 100;
      const processCpuPct = pct(cpu.user + cpu.system);
      const serverCpuPct = server0 !== undefined && server1 !== undefined ? ((server1 - server0) / wall) * 100 : undefined;
      // Machine busy time in % of one core (100 × cores at most).
      const machinePct = machine0 && machine1 && machine1.total > machine0.total
        ? ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100 * availableParallelism() : undefined;
      return {
        wallMs: wall,
        processCpuPct,
        mainThreadCpuPct: pct(thread.user + thread.system),
        mainThreadEventLoopUtilization: performance.eventLoopUtilization(elu0).utilization,
        serverCpuPct,
        /** CPU other processes used meanwhile, % of one core (noise). */
        othersCpuPct: machinePct !== undefined ? Math.max(0, machinePct - processCpuPct - (serverCpuPct ?? 0)) : undefined,
        rssMax,
        serverRssMax: serverPid ? serverRssMax : undefined,
      };
    },
    stop: () => clearInterval(timer),
  };
}

// ---------------------------------------------------------------------------
// Environment

/** The MongoDB URL the benchmarks use: MONGO_URL, else TEST_MONGO_URL (scripts/infra/up.sh's env file). */
export function mongoUrlFromEnv(): string | undefined {
  return process.env.MONGO_URL || process.env.TEST_MONGO_URL || undefined;
}

/** A database name no earlier run used. */
export function freshDbName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
}

/** The server's port, for finding its process. */
export function portOf(url: string): number {
  const m = /^mongodb:\/\/(?:[^@/]*@)?[^:/,]+:(\d+)/.exec(url);
  return m ? Number(m[1]) : 27017;
}

/** Server identity: FerretDB reports its own version in buildInfo. */
export async function serverVersion(url: string): Promise<string> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2_000 });
  try {
    const info = await client.db("admin").command({ buildInfo: 1 });
    const ferret = (info.ferretdbVersion ?? (info.ferretdbFeatures ? "FerretDB" : undefined)) as string | undefined;
    return ferret ? `FerretDB ${ferret} (MongoDB wire version ${String(info.version)})` : `MongoDB ${String(info.version)}`;
  } finally {
    await client.close();
  }
}

/**
 * Counts a collection's documents with the driver and no socket timeout (the
 * adapter's 15 s socket timeout is shorter than FerretDB needs to count a few
 * hundred thousand documents); answers the count and how long it took.
 */
export async function countDocuments(url: string, dbName: string, collection: string): Promise<{ count: number; ms: number }> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2_000, socketTimeoutMS: 0 });
  try {
    const t0 = performance.now();
    const count = await client.db(dbName).collection(collection).countDocuments({});
    return { count, ms: performance.now() - t0 };
  } finally {
    await client.close();
  }
}

/** Runs one find with the driver and no socket timeout; answers the number of documents and how long it took. */
export async function rawFind(url: string, dbName: string, collection: string, filter: Record<string, unknown>, sort: Record<string, 1 | -1>): Promise<{ docs: number; ms: number }> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2_000, socketTimeoutMS: 0 });
  try {
    const t0 = performance.now();
    const docs = (await client.db(dbName).collection(collection).find(filter, { sort }).toArray()).length;
    return { docs, ms: performance.now() - t0 };
  } finally {
    await client.close();
  }
}

/** Drops a database the benchmark created. */
export async function dropDatabase(url: string, dbName: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2_000 });
  try {
    await client.db(dbName).dropDatabase();
  } finally {
    await client.close();
  }
}

export function machine(): string {
  return `${availableParallelism()} CPU (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`;
}

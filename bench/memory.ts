/**
 * Memory of every process of the mesh as production runs it — compiled
 * (`npm run build`), plain node, NODE_ENV=production, on PostgreSQL, MongoDB
 * (FerretDB) and Redis — idle and after sustained load through the gateway,
 * for sizing the Kubernetes requests and limits (deploy/k8s/overlays/prod).
 *
 *   bash scripts/infra/up.sh && source .data/infra/env      # or any servers: TEST_DATABASE_URL, TEST_MONGO_URL, TEST_REDIS_URL
 *   node_modules/.bin/tsx bench/memory.ts [--duration 30] [--connections 64] [--no-build]
 *
 * Load: authenticated REST reads (profile, project list, one project, API-key
 * analytics summary) and writes (project create), every reply checked, while
 * the gateway ships every access record to logging and analytics rolls them
 * up. Reports RSS and V8 heap-ish figures from /proc for each process: idle,
 * peak (VmHWM) and at the end of the load.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { freePort, stopProcess, untilAccepting } from "../test/support/processes.js";

const { values: opt } = parseArgs({
  options: {
    duration: { type: "string", default: "30" },
    connections: { type: "string", default: "64" },
    "no-build": { type: "boolean", default: false },
  },
});
const root = join(import.meta.dirname, "..");
const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: start the servers (scripts/infra/up.sh) and source their env file`);
  return v;
};
const databaseUrl = env("TEST_DATABASE_URL");
const mongoUrl = env("TEST_MONGO_URL");
const redisUrl = env("TEST_REDIS_URL");

if (!opt["no-build"]) execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" });
const mesh = join(root, "dist", "bin", "mesh.js");
const signingKeys = execFileSync(process.execPath, [join(root, "dist", "bin", "auth-signing-keys.js")], { encoding: "utf8" }).trim();

const run = `bench_mem_${Date.now().toString(36)}`;
const [auth, project, logging, analytics, gateway, admin] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
const dir = mkdtempSync(join(tmpdir(), "mesh-memory-"));
const gatewayConfig = join(dir, "gateway.yaml");
// The shipped config with limits the load never reaches (a memory run, not a rate-limit test).
writeFileSync(gatewayConfig, readFileSync(join(root, "gateway", "gateway.yaml"), "utf8")
  .replace("  - rateLimit: {}", "  - rateLimit: { apiKey: { limit: 6000000, period: 60s }, user: { limit: 6000000, period: 60s } }"));

const common = {
  PATH: process.env.PATH ?? "", NODE_ENV: "production", LOG_LEVEL: "warn", HOST: "127.0.0.1",
  PROJECT_ADDRESS: `127.0.0.1:${project}`, LOGGING_ADDRESS: `127.0.0.1:${logging}`,
  HEALTH_TARGETS: `auth=127.0.0.1:${auth},project=127.0.0.1:${project},logging=127.0.0.1:${logging},analytics=127.0.0.1:${analytics}`,
};
const specs: [string, number, Record<string, string>][] = [
  ["auth", auth!, { AUTH_PORT: String(auth), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: `${run}_auth`, AUTH_SIGNING_KEYS: signingKeys }],
  ["project", project!, { PROJECT_PORT: String(project), DATABASE_URL: databaseUrl, DATABASE_SCHEMA: `${run}_project` }],
  ["logging", logging!, { LOGGING_PORT: String(logging), MONGO_URL: mongoUrl, MONGO_DB: run }],
  ["analytics", analytics!, { ANALYTICS_PORT: String(analytics), MONGO_URL: mongoUrl, MONGO_DB: run }],
  ["gateway", gateway!, {
    GATEWAY_CONFIG: gatewayConfig, GATEWAY_PORT: String(gateway), GATEWAY_ADMIN_PORT: String(admin), REDIS_URL: redisUrl,
    UPSTREAM_AUTH: `127.0.0.1:${auth}`, UPSTREAM_PROJECT: `127.0.0.1:${project}`, UPSTREAM_LOGGING: `127.0.0.1:${logging}`, UPSTREAM_ANALYTICS: `127.0.0.1:${analytics}`,
  }],
];
const children = new Map<string, ChildProcess>();
const stopAll = () => Promise.all([...children.values()].map(stopProcess));
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

try {
  for (const [name, port, extra] of specs) {
    const child = spawn(process.execPath, [mesh, name], { cwd: dir, env: { ...common, ...extra }, stdio: ["ignore", "ignore", "inherit"] });
    children.set(name, child);
    await untilAccepting(child, port, name, 60_000);
  }
  const gw = `http://127.0.0.1:${gateway}`;
  const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown) => {
    const res = await fetch(`${gw}${path}`, { method, headers: { "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json() as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const email = `${run}@example.com`;
  await call("POST", "/api/v1/auth/register", {}, { email, password: "memory bench 1", name: "Bench" });
  const token = (await call("POST", "/api/v1/auth/login", {}, { email, password: "memory bench 1" })).accessToken as string;
  const auth_ = { authorization: `Bearer ${token}` };
  const projectId = (await call("POST", "/api/v1/projects", auth_, { name: "bench", description: "memory" })).id as string;
  const key = (await call("POST", `/api/v1/projects/${projectId}/keys`, auth_, { name: "bench" })).key as string;

  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const idle = sample();
  let created = 0;
  const requests: autocannon.Request[] = [
    { method: "GET", path: "/api/v1/auth/profile", headers: auth_ },
    { method: "GET", path: "/api/v1/projects?page=1&limit=20", headers: auth_ },
    { method: "GET", path: `/api/v1/projects/${projectId}`, headers: auth_ },
    { method: "GET", path: "/api/v1/analytics/summary", headers: { "x-api-key": key } },
    {
      method: "POST", path: "/api/v1/projects", headers: { ...auth_, "content-type": "application/json" },
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ name: `load ${created++}`, description: "memory bench" }) }),
    },
  ];
  const result = await autocannon({
    url: gw, connections: Number(opt.connections), duration: Number(opt.duration), requests,
  });
  const loaded = sample();
  console.log(`Memory benchmark, ${new Date().toISOString()}, code at ${execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()}`);
  console.log(`load: ${opt.connections} connections for ${opt.duration} s, ${result.requests.total} requests (${Math.round(result.requests.average)}/s), non-2xx ${result.non2xx}, errors ${result.errors}`);
  console.log("");
  console.log("| process | RSS idle | RSS peak (VmHWM) | RSS after load |");
  console.log("|---|---|---|---|");
  for (const name of children.keys()) {
    console.log(`| ${name} | ${mib(idle.get(name)?.rss)} | ${mib(loaded.get(name)?.hwm)} | ${mib(loaded.get(name)?.rss)} |`);
  }
} finally {
  await stopAll();
}

/** RSS and its peak (kB from /proc/<pid>/status) of every process. */
function sample(): Map<string, { rss: number; hwm: number }> {
  const out = new Map<string, { rss: number; hwm: number }>();
  for (const [name, child] of children) {
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    out.set(name, { rss: kb("VmRSS"), hwm: kb("VmHWM") });
  }
  return out;
}

function mib(kb: number | undefined): string {
  return kb === undefined ? "–" : `${(kb / 1024).toFixed(0)} MiB`;
}

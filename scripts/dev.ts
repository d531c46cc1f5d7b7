import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/**
 * `npm start`: runs every process of the mesh with embedded stores (no
 * servers needed), prefixes their output, and stops them all on Ctrl-C or
 * SIGTERM: the four services and the gateway in front of them (:8080).
 */
const processes = [
  { name: "auth", entry: "services/auth/main.ts" },
  { name: "project", entry: "services/project/main.ts" },
  { name: "logging", entry: "services/logging/main.ts" },
  { name: "analytics", entry: "services/analytics/main.ts" },
  { name: "gateway", entry: "gateway/main.ts" },
];

const root = join(import.meta.dirname, "..");

const children = new Map<string, ChildProcess>();
let stopping = false;

for (const p of processes) {
  // node with tsx's loader rather than the tsx wrapper: one process per service, so the fallback SIGKILL below ends it.
  const child = spawn(process.execPath, ["--import", "tsx", p.entry], { cwd: root, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
  children.set(p.name, child);
  const prefix = (chunk: Buffer) => chunk.toString().split("\n").filter(Boolean).map((l) => `[${p.name}] ${l}\n`).join("");
  child.stdout.on("data", (c: Buffer) => process.stdout.write(prefix(c)));
  child.stderr.on("data", (c: Buffer) => process.stderr.write(prefix(c)));
  child.on("exit", (code, signal) => {
    children.delete(p.name);
    if (!stopping) {
      process.stderr.write(`[dev] ${p.name} exited (${signal ?? code}); stopping the others\n`);
      stop(code ?? 1);
    } else if (children.size === 0) {
      process.exit(0);
    }
  });
}

function stop(code = 0): void {
  if (stopping) return;
  stopping = true;
  if (children.size === 0) process.exit(code);
  // The gateway first (it drains its requests and ships its last access records to logging), then the services.
  // (A terminal's Ctrl-C reaches every process of the group at once; a SIGTERM to this script keeps the order.)
  const gateway = children.get("gateway");
  const stopServices = () => { for (const child of children.values()) child.kill("SIGTERM"); };
  if (gateway) {
    gateway.once("exit", stopServices);
    gateway.kill("SIGTERM");
  } else {
    stopServices();
  }
  setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
    process.exit(code || 1);
  }, 15_000).unref();
}

process.on("SIGINT", () => stop());
process.on("SIGTERM", () => stop());

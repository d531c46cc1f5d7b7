import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe } from "vitest";

/** A language toolchain a polyglot test needs: the command that runs it, or why there is none. */
export type Toolchain =
  | { readonly kind: "found"; readonly name: string; readonly command: string }
  | { readonly kind: "missing"; readonly name: string; readonly reason: string };

/**
 * The Python that has grpcio and grpcio-tools: `$MESH_PYTHON`, which .ci/run exports
 * (`MESH_PYTHON=$(bash scripts/polyglot/python-env.sh)` makes and names that venv).
 */
export function findPython(env: NodeJS.ProcessEnv = process.env): Toolchain {
  const name = "Python with grpcio";
  const python = env.MESH_PYTHON;
  if (!python) return { kind: "missing", name, reason: "MESH_PYTHON is not set (MESH_PYTHON=$(bash scripts/polyglot/python-env.sh) makes the venv)" };
  const probe = spawnSync(python, ["-c", "import grpc, grpc_tools"], { encoding: "utf8" });
  if (probe.status !== 0) {
    return { kind: "missing", name, reason: `MESH_PYTHON=${python} cannot import grpc and grpc_tools: ${(probe.stderr || String(probe.error)).trim()}` };
  }
  return { kind: "found", name, command: python };
}

/** `go` on PATH, else /usr/local/go/bin/go (where scripts/polyglot/go-plugins.sh looks too). */
export function findGo(env: NodeJS.ProcessEnv = process.env): Toolchain {
  const name = "Go";
  for (const go of ["go", "/usr/local/go/bin/go"]) {
    if (go.startsWith("/") && !existsSync(go)) continue;
    if (spawnSync(go, ["version"], { env }).status === 0) return { kind: "found", name, command: go };
  }
  return { kind: "missing", name, reason: "no `go` on PATH or in /usr/local/go/bin (Go 1.26+ builds examples/go)" };
}

/**
 * Declares a suite that needs `toolchain` (see describeWithServer for servers). Without it the suite is skipped
 * with a message saying so, except under CI=true, where a missing toolchain is a failure: CI must prove every
 * language's example.
 */
export function describeWithToolchain(toolchain: Toolchain, name: string, body: (command: string) => void): void {
  if (toolchain.kind === "found") {
    describe(name, () => body(toolchain.command));
    return;
  }
  if (process.env.CI === "true") {
    describe(name, () => {
      throw new Error(`${toolchain.name} is missing: ${toolchain.reason}; CI must run "${name}" (see .ci/run)`);
    });
    return;
  }
  process.stderr.write(`\n[skip] ${name}: ${toolchain.name} is missing: ${toolchain.reason}\n`);
  describe.skip(name, () => body(""));
}

/** What a finished command did. */
export interface CommandResult {
  /** Exit code; null when killed by a signal (a timeout included). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `command` to its end (killed after `timeoutMs`), with `env` added to this process's environment. */
export function runCommand(command: string, args: readonly string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs: number }): Promise<CommandResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", (err) => { clearTimeout(timer); reject(err); });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

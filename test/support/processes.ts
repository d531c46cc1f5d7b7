import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";

/** A loopback port free right now (the server a test starts there gets it in practice). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
  });
}

/** Waits (bounded) until `child` accepts connections on `port`; throws if it exits or `timeoutMs` pass. */
export async function untilAccepting(child: ChildProcess, port: number, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Kills a process the test started (SIGKILL: it also ends a stopped one) and waits for its exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** The FerretDB binary scripts/infra/up.sh builds. */
export const ferretdbBinary = join(process.env.MESH_CACHE ?? join(homedir(), ".cache", "mesh"), "bin", "ferretdb");

/** Whether that binary is there (outage tests run a FerretDB of their own). */
export const haveFerretdb = existsSync(ferretdbBinary);

/** Starts a FerretDB of the test's own (SQLite under `dir`) on `port`; resolves once it accepts connections (≤ 15 s). */
export async function startFerretdb(dir: string, port: number): Promise<ChildProcess> {
  await mkdir(join(dir, "data"), { recursive: true });
  await mkdir(join(dir, "state"), { recursive: true });
  const child = spawn(ferretdbBinary, [
    "--handler=sqlite", `--sqlite-url=file:${dir}/data/`, `--listen-addr=127.0.0.1:${port}`, `--state-dir=${dir}/state`,
    "--debug-addr=-", "--telemetry=disable", "--log-level=error",
  ], { stdio: "ignore" });
  try {
    await untilAccepting(child, port, "FerretDB", 15_000);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  return child;
}

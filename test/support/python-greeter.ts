import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createFileRegistry, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { runCommand } from "./toolchains.js";

const ROOT = resolve(import.meta.dirname, "../..");
const FIXTURE = join(ROOT, "test/fixtures/reflected-greeter");

/** The schema versions of the demo Greeter (test/fixtures/reflected-greeter/proto/<variant>). */
export type GreeterVariant = "base" | "breaking" | "extended";

/** One variant compiled: its generated Python code, and its Greeter descriptor for clients. */
export interface CompiledGreeter {
  readonly genDir: string;
  readonly service: DescService;
}

/**
 * Compiles a variant's greeter.proto (with google/api from google-proto-files,
 * the mesh's policy option from proto/, grpc.health.v1 from grpc-health-check)
 * with `python -m grpc_tools.protoc` into a fresh temporary directory; the
 * descriptor set it also writes gives the test its own Greeter descriptor.
 */
export async function compileGreeter(python: string, variant: GreeterVariant): Promise<CompiledGreeter> {
  const genDir = await mkdtemp(join(tmpdir(), `greeter-${variant}-`));
  const descriptorSet = join(genDir, "greeter.binpb");
  const r = await runCommand(python, [
    "-m", "grpc_tools.protoc",
    `-I${join(FIXTURE, "proto", variant)}`, "-Inode_modules/google-proto-files", "-Iproto", "-Inode_modules/grpc-health-check/proto",
    `--python_out=${genDir}`, `--grpc_python_out=${genDir}`, `--descriptor_set_out=${descriptorSet}`, "--include_imports",
    "demo/greeter/v1/greeter.proto", "google/api/annotations.proto", "google/api/http.proto", "mesh/gateway/v1/policy.proto", "health/v1/health.proto",
  ], { cwd: ROOT, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`grpc_tools.protoc failed for ${variant}: ${r.stderr}`);
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, await readFile(descriptorSet)));
  const service = registry.getService("demo.greeter.v1.Greeter");
  if (service === undefined) throw new Error(`${variant}: no demo.greeter.v1.Greeter in the descriptor set`);
  return { genDir, service };
}

/** A running server.py. */
export interface GreeterServer {
  readonly port: number;
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
}

/** Starts server.py on `port` (0: a free one) with a compiled variant; resolves once it accepts calls. */
export async function startGreeter(python: string, compiled: CompiledGreeter, port = 0): Promise<GreeterServer> {
  const child = spawn(python, [join(FIXTURE, "server.py"), "--gen", compiled.genDir, "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const listening = await new Promise<number>((resolveListening, reject) => {
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      const m = /LISTENING (\d+)/.exec(stdout);
      if (m) resolveListening(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`server.py exited with ${code} before listening: ${stderr}`)));
  });
  return { port: listening, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { builtinModules } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadAuthConfig } from "../services/auth/config.js";
import { keyringFromConfig } from "../services/auth/domain/keyring.js";

// The production build (scripts/build.ts) compiled into a scratch directory and run with plain node, no tsx:
// what the image runs. The directory lies inside the repository so the output finds node_modules/ as dist/ does.

const root = join(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string; dependencies: Record<string, string> };
let out: string;

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `node <out>/<script> ...args` with only `env` (plus PATH) in its environment. */
async function node(script: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [join(out, script), ...args], { cwd: root, env: { PATH: process.env.PATH ?? "", ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

beforeAll(() => {
  mkdirSync(join(root, "node_modules", ".cache"), { recursive: true });
  out = mkdtempSync(join(root, "node_modules", ".cache", "mesh-build-test-"));
  const r = spawnSync(process.execPath, [join(root, "scripts", "build.ts"), "--out-dir", out], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
});

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe("the production build", () => {
  it("runs the gateway's config check with plain node, from its built-in config copied beside the code", async () => {
    expect(await node("bin/mesh.js", ["gateway", "--check-config"])).toEqual({ code: 0, stdout: "config OK: 4 clusters, 8 filters\n", stderr: "" });
    expect((await node("bin/mesh.js", ["gateway", "--check-config", "gateway/gateway.yaml"])).code).toBe(0);
  });

  it("prints the usage naming the five processes and exits 2 when the process is missing or unknown", async () => {
    for (const args of [[], ["nope"]]) {
      const r = await node("bin/mesh.js", args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("usage: mesh <auth|project|logging|analytics|gateway>");
    }
  });

  it("runs a service's configuration checks: auth in production without its database and keys exits 1 naming both", async () => {
    const r = await node("bin/mesh.js", ["auth"], { NODE_ENV: "production" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DATABASE_URL: is required in production[\s\S]*AUTH_SIGNING_KEYS: is required in production/);
  });

  it("serves a service on its embedded store (migrations found), healthy to the health check, and stops on SIGTERM", async () => {
    const dataDir = join(out, "data");
    const child = spawn(process.execPath, [join(out, "bin", "mesh.js"), "auth"], {
      cwd: root, env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", AUTH_PORT: "0", DATA_DIR: dataDir, OTEL_SDK_DISABLED: "true" },
    });
    let log = "";
    child.stderr.on("data", (c: Buffer) => (log += c.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (c: Buffer) => {
        log += c.toString();
        const m = /"port":(\d+)[^\n]*auth service listening/.exec(log);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", (code) => reject(new Error(`auth exited with ${code} before listening:\n${log}`)));
    });
    const versions = readdirSync(join(root, "services", "auth", "storage", "migrations")).map((f) => Number(/^(\d+)_/.exec(f)?.[1])).sort((a, b) => a - b);
    expect(log).toContain(`"applied":[${versions.join(",")}]`);
    expect(await node("bin/health-check.js", [`127.0.0.1:${port}`])).toEqual({ code: 0, stdout: "", stderr: "" });
    child.kill("SIGTERM");
    expect((await once(child, "exit"))[0]).toBe(0);
  });

  it("reports an address where nothing serves gRPC as unhealthy, and checks HTTP endpoints by status", async () => {
    const server: Server = createServer((req, res) => res.writeHead(req.url === "/ready" ? 200 : 503).end()).listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    try {
      expect((await node("bin/health-check.js", ["--timeout-ms", "500", "127.0.0.1:1"])).code).toBe(1);
      expect((await node("bin/health-check.js", [`http://127.0.0.1:${port}/ready`])).code).toBe(0);
      expect(await node("bin/health-check.js", [`http://127.0.0.1:${port}/other`])).toMatchObject({ code: 1, stderr: expect.stringContaining("HTTP 503") });
      expect((await node("bin/health-check.js", [])).code).toBe(2);
    } finally {
      server.close();
    }
  });

  it("prints a signing key the auth service accepts as AUTH_SIGNING_KEYS in production", async () => {
    const r = await node("bin/auth-signing-keys.js", []);
    expect(r.code).toBe(0);
    const config = loadAuthConfig({ NODE_ENV: "production", DATABASE_URL: "postgres://mesh@db/mesh", AUTH_SIGNING_KEYS: r.stdout.trim() });
    const keyring = await keyringFromConfig(config.AUTH_SIGNING_KEYS as JWK[]);
    expect(keyring.publicJwks()).toEqual([expect.objectContaining({ kty: "OKP", crv: "Ed25519", kid: keyring.signer().kid })]);
  });

  it("writes the package version the processes report beside the code", () => {
    expect(JSON.parse(readFileSync(join(out, "package.json"), "utf8"))).toMatchObject({ version: pkg.version, type: "module" });
  });

  it("imports nothing but production dependencies and node built-ins, so the image's pruned node_modules suffices", () => {
    const allowed = new Set([...Object.keys(pkg.dependencies), ...builtinModules]);
    const offenders: string[] = [];
    for (const file of readdirSync(out, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"))) {
      for (const specifier of importedSpecifiers(readFileSync(join(out, file), "utf8"))) {
        if (specifier.startsWith(".") || specifier.startsWith("node:")) continue;
        if (!allowed.has(packageOf(specifier))) offenders.push(`${file}: ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

/** Static `import … from "x"`, `export … from "x"`, `import "x"` and literal `import("x")` specifiers of tsc's output. */
function importedSpecifiers(js: string): string[] {
  const re = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  return [...js.matchAll(re)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** "@scope/name/sub" → "@scope/name"; "name/sub" → "name". */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

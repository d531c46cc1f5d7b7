import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

// deploy/docker/Dockerfile and .dockerignore, read without Docker: the final stage against the deployment contract
// (deploy/README.md), and the build context against what the production build compiles and reads.

const root = join(import.meta.dirname, "..");
const CONTRACT_PORTS = [50051, 50052, 50053, 50054, 8080, 9901];

interface Instruction { op: string; args: string }
interface Stage { name: string; from: string; steps: Instruction[] }

/** The Dockerfile's stages, comments dropped, continuation lines joined, `${ARG}` replaced by the ARG's default. */
function stages(): Stage[] {
  const text = readFileSync(join(root, "deploy", "docker", "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const args = new Map<string, string>();
  const out: Stage[] = [];
  for (const line of text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))) {
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(line)!;
    const expanded = rest!.replace(/\$\{(\w+)\}/g, (_, n: string) => args.get(n) ?? "");
    if (op!.toUpperCase() === "ARG" && out.length === 0) {
      const [k, v = ""] = expanded.split("=");
      args.set(k!, v);
    } else if (op!.toUpperCase() === "FROM") {
      const [from, , name] = expanded.split(/\s+/);
      out.push({ name: name ?? `stage${out.length}`, from: from!, steps: [] });
    } else {
      out.at(-1)!.steps.push({ op: op!.toUpperCase(), args: expanded });
    }
  }
  return out;
}

/** `.dockerignore` as Docker applies it: patterns from the context root, `**` any depth, `!` re-includes, a directory match covers its content. */
function ignored(): (path: string) => boolean {
  const rules = readFileSync(join(root, ".dockerignore"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map((l) => {
    const negate = l.startsWith("!");
    const body = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
    const source = body.split(/(\*\*\/|\*\*|\*|\?)/).map((t) =>
      t === "**/" ? "(?:.*/)?" : t === "**" ? ".*" : t === "*" ? "[^/]*" : t === "?" ? "[^/]" : t.replace(/[.+^${}()|[\]\\]/g, "\\$&")).join("");
    return { negate, re: new RegExp(`^${source}(?:/.*)?$`) };
  });
  return (path) => rules.reduce((out, r) => (r.re.test(path) ? !r.negate : out), false);
}

const copies = (s: Stage) => s.steps.filter((i) => i.op === "COPY").map((i) => {
  const words = i.args.split(/\s+/);
  const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
  const paths = words.filter((w) => !w.startsWith("--"));
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
});

describe("deploy/docker/Dockerfile", () => {
  const all = stages();
  const final = all.at(-1)!;
  const build = all.find((s) => s.name === "build")!;

  it("builds every stage on Node 24 slim", () => {
    for (const s of all) expect(s.from, s.name).toMatch(/^node:24(-[a-z]+)?-slim$/);
  });

  it("runs the final stage as uid 1000 in /app with NODE_ENV=production, the mesh entrypoint, gateway by default, the contract's ports", () => {
    const last = (op: string) => final.steps.filter((i) => i.op === op).at(-1)?.args;
    expect(last("USER")).toBe("1000:1000"); // numeric: Kubernetes' runAsNonRoot can verify it
    expect(last("WORKDIR")).toBe("/app");
    expect(final.steps.filter((i) => i.op === "ENV").map((i) => i.args)).toContain("NODE_ENV=production");
    expect(JSON.parse(last("ENTRYPOINT")!)).toEqual(["node", "/app/dist/bin/mesh.js"]);
    expect(JSON.parse(last("CMD")!)).toEqual(["gateway"]);
    expect(final.steps.filter((i) => i.op === "EXPOSE").flatMap((i) => i.args.split(/\s+/).map(Number)).sort()).toEqual([...CONTRACT_PORTS].sort());
  });

  it("puts only production dependencies and the build output in the final stage, and runs nothing there", () => {
    expect(final.steps.filter((i) => i.op === "RUN")).toEqual([]);
    const finalCopies = copies(final);
    expect(finalCopies.every((c) => c.from !== undefined)).toBe(true);
    for (const c of finalCopies) {
      const source = all.find((s) => s.name === c.from)!;
      if (c.sources.some((p) => p.endsWith("node_modules"))) {
        expect(source.steps.filter((i) => i.op === "RUN").map((i) => i.args)).toEqual([expect.stringMatching(/^npm install .*--omit=dev/)]);
      } else {
        expect(c, "dist/ from the build stage").toMatchObject({ from: "build", sources: ["/app/dist"] });
      }
    }
  });

  it("installs as .ci/run does (npm install, not npm ci) and runs npm run build", () => {
    const runs = all.flatMap((s) => s.steps.filter((i) => i.op === "RUN").map((i) => i.args));
    expect(runs.filter((r) => /\bnpm ci\b/.test(r))).toEqual([]);
    expect(build.steps.filter((i) => i.op === "RUN").map((i) => i.args)).toEqual([expect.stringMatching(/^npm install --no-audit --no-fund/), "npm run build"]);
  });

  it("copies from the build context only paths that exist and .dockerignore lets through", () => {
    const isIgnored = ignored();
    for (const c of all.flatMap(copies).filter((x) => x.from === undefined)) {
      for (const p of c.sources) {
        expect(existsSync(join(root, p)), p).toBe(true);
        expect(isIgnored(p), p).toBe(false);
      }
    }
  });

  it("gives the build stage every file the production build compiles or copies (tsc's file list and the runtime assets)", () => {
    const isIgnored = ignored();
    const copied = copies(build).filter((c) => c.from === undefined).flatMap((c) => c.sources);
    const inBuild = (f: string) => copied.some((p) => f === p || f.startsWith(`${p}/`));
    const tsc = spawnSync(join(root, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.build.json", "--listFilesOnly"], { cwd: root, encoding: "utf8" });
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
    const compiled = tsc.stdout.split("\n").filter((f) => f && !f.includes("/node_modules/")).map((f) => relative(root, f));
    expect(compiled).toContain("bin/mesh.ts");
    const assets = ["gateway/gateway.yaml", ...migrationFiles(), "scripts/build.ts", "tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json"];
    const missing = [...compiled, ...assets].filter((f) => !inBuild(f) || isIgnored(f));
    expect(missing).toEqual([]);
  });

  it("keeps local, generated and secret files out of the build context", () => {
    const isIgnored = ignored();
    for (const p of ["node_modules", "dist", ".data", ".git", "coverage", ".env", "bench", "test", "lib/config.test.ts"]) expect(isIgnored(p), p).toBe(true);
  });
});

function migrationFiles(): string[] {
  return readdirSync(join(root, "services")).flatMap((svc) => {
    const dir = join("services", svc, "storage", "migrations");
    return existsSync(join(root, dir)) && statSync(join(root, dir)).isDirectory() ? readdirSync(join(root, dir)).map((f) => `${dir}/${f}`) : [];
  });
}

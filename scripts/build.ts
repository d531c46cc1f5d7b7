import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";

/**
 * `npm run build`: the production build that the image runs (deploy/README.md).
 *
 * 1. Compiles bin/ and everything it imports with tsc (tsconfig.build.json) into
 *    the output directory (default `dist/`, emptied first).
 * 2. Copies the files the code reads at run time relative to its own module,
 *    at the same relative paths, so `dist/` runs with plain `node`:
 *    - `services/<svc>/storage/migrations/*.sql` (services/<svc>/app.ts, `import.meta.dirname`);
 *    - `gateway/gateway.yaml`, the built-in config (gateway/config/load.ts, `DEFAULT_CONFIG_FILE`);
 *    - `package.json` as `{ name, version, type }` (lib/run-service.ts reads `../package.json` for MESH_VERSION).
 *
 * `--out-dir DIR` builds elsewhere (scripts/build.test.ts). DIR must lie inside
 * the repository, because the compiled code resolves packages from its
 * `node_modules/`.
 */
const root = resolve(import.meta.dirname, "..");

/** Non-TypeScript files read at run time: repository-relative files, or directories copied whole. */
function runtimeAssets(): string[] {
  const migrations = readdirSync(join(root, "services"))
    .map((svc) => join("services", svc, "storage", "migrations"))
    .filter((dir) => existsSync(join(root, dir)));
  return ["gateway/gateway.yaml", ...migrations];
}

function outDirFrom(argv: readonly string[]): string {
  const i = argv.indexOf("--out-dir");
  if (i >= 0 && argv[i + 1] === undefined) throw new Error("--out-dir needs a directory");
  const out = resolve(root, i >= 0 ? argv[i + 1]! : "dist");
  const rel = relative(root, out);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) throw new Error(`--out-dir must be a directory inside ${root}: ${out}`);
  return out;
}

/** Empties `out`, refusing to if it holds TypeScript sources (a mistyped --out-dir must not delete code). */
function clean(out: string): void {
  if (!existsSync(out)) return;
  const sources = readdirSync(out, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  if (sources.length > 0) throw new Error(`refusing to empty ${out}: it holds TypeScript files (${sources[0]}, ...)`);
  rmSync(out, { recursive: true, force: true });
}

function compile(out: string): void {
  const tsc = join(root, "node_modules", ".bin", "tsc");
  const r = spawnSync(tsc, ["-p", join(root, "tsconfig.build.json"), "--outDir", out], { cwd: root, stdio: "inherit" });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`tsc exited with ${r.status ?? r.signal}`);
}

function copyAssets(out: string): void {
  for (const asset of runtimeAssets()) {
    cpSync(join(root, asset), join(out, asset), { recursive: true });
  }
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string; version: string; type: string };
  writeFileSync(join(out, "package.json"), `${JSON.stringify({ name: pkg.name, version: pkg.version, type: pkg.type, private: true }, null, 2)}\n`);
}

try {
  const t0 = performance.now();
  const out = outDirFrom(process.argv.slice(2));
  clean(out);
  compile(out);
  copyAssets(out);
  process.stdout.write(`built ${relative(root, out)}/ in ${((performance.now() - t0) / 1000).toFixed(1)} s (entry: ${relative(root, join(out, "bin", "mesh.js"))})\n`);
} catch (err) {
  process.stderr.write(`build: ${(err as Error).message}\n`);
  process.exitCode = 1;
}

import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { checkConfigCommand } from "./check.js";
import { DEFAULT_CONFIG_FILE } from "./load.js";
import { baseTree } from "./testing.js";

const tmp = mkdtempSync(join(tmpdir(), "gateway-check-"));

function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let out = "";
  let err = "";
  const code = checkConfigCommand(argv, env, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) });
  return { code, out, err };
}

function badFile(): string {
  const tree = baseTree();
  tree.clusters[1]!.endpoint = "x";
  tree.filters.push(tree.filters.splice(6, 1)[0]!); // cache after router
  const file = join(tmp, "bad.yaml");
  writeFileSync(file, JSON.stringify(tree));
  return file;
}

describe("checkConfigCommand", () => {
  it("reports a valid file with its counts and exits 0", () => {
    expect(run(["--check-config", DEFAULT_CONFIG_FILE])).toEqual({ code: 0, out: "config OK: 4 clusters, 8 filters\n", err: "" });
  });

  it("checks the built-in config without a FILE, and GATEWAY_CONFIG when set", () => {
    expect(run([]).code).toBe(0);
    expect(run(["--check-config"], { GATEWAY_CONFIG: badFile() }).code).toBe(1);
  });

  it("prints every violation, one per line, and exits 1", () => {
    expect(run([badFile()])).toEqual({
      code: 1,
      out: "",
      err: "clusters[1].endpoint: unknown field (did you mean endpoints?)\nfilters[6]: router must be the last filter\n"
        + "filters[7]: cache must come before router: the gateway runs its filters in the order requestId, cors, accessLog, authn, apiKey, rateLimit, cache, router (any may be left out)\n",
    });
  });

  it("checks the environment overrides too", () => {
    const r = run([DEFAULT_CONFIG_FILE], { UPSTREAM_AUTH: "nowhere", NODE_ENV: "production" });
    expect(r.code).toBe(1);
    expect(r.err.split("\n").filter(Boolean)).toEqual([
      expect.stringMatching(/^redis\.url: is required when NODE_ENV=production/),
      expect.stringMatching(/^UPSTREAM_AUTH: "nowhere" is not host:port/),
    ]);
  });

  it("reports a missing file clearly and exits 1", () => {
    const file = join(tmp, "missing.yaml");
    expect(run([file])).toEqual({ code: 1, out: "", err: `${file}: cannot read the config file: no such file\n` });
  });

  it("rejects a malformed command line with exit 2", () => {
    expect(run(["a.yaml", "b.yaml"]).code).toBe(2);
    expect(run(["--verbose"]).err).toMatch(/^usage: gateway --check-config \[FILE\]/);
  });

  it("exits 1 as a script on a bad file, printing the violations", () => {
    const cwd = fileURLToPath(new URL("../..", import.meta.url));
    const r = spawnSync("node_modules/.bin/tsx", ["gateway/config/check.ts", badFile()], { cwd, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("filters[6]: router must be the last filter");
    expect(r.stdout).toBe("");
  });
});

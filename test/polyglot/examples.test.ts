import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueSchema } from "../support/integration.js";
import { startMesh, type Mesh } from "../support/mesh.js";
import { describeWithToolchain, findGo, findPython, runCommand, type CommandResult } from "../support/toolchains.js";

// examples/python and examples/go as their users run them: stubs generated from proto/ by `npm run gen:polyglot`,
// the client pointed at a running mesh's gateway (gRPC for register, login and create, REST to read back).

const root = join(import.meta.dirname, "..", "..");
const python = findPython();
const go = findGo();

/** The email and password an example registers: the test logs in with them to look at what it did. */
function newAccount(language: string) {
  return { email: `${uniqueSchema(language)}@example.com`, password: `polyglot ${language} 1` };
}

/** Prints how long a step took (the suite's cost is reported, never asserted). */
function timed(step: string, r: CommandResult): CommandResult {
  process.stderr.write(`[polyglot] ${step}: ${(r.ms / 1000).toFixed(1)} s\n`);
  return r;
}

/** `npm run gen:polyglot -- <language>`, which must succeed. */
async function generate(language: "python" | "go", env: Record<string, string> = {}): Promise<void> {
  const r = timed(`gen:polyglot ${language}`, await runCommand("npm", ["run", "--silent", "gen:polyglot", "--", language], { cwd: root, env, timeoutMs: 240_000 }));
  expect(r.code, `npm run gen:polyglot -- ${language}:\n${r.stdout}${r.stderr}`).toBe(0);
}

describe.skipIf(python.kind === "missing" && go.kind === "missing" && process.env.CI !== "true")("the polyglot examples against a running mesh", () => {
  let mesh: Mesh;

  beforeAll(async () => {
    const t0 = performance.now();
    mesh = await startMesh();
    process.stderr.write(`[polyglot] mesh started: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }, 120_000);

  afterAll(async () => {
    await mesh?.stop();
  });

  async function rest(method: string, path: string, opts: { token?: string; body?: unknown } = {}) {
    const res = await fetch(`${mesh.gatewayUrl}${path}`, {
      method,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body ? { "content-type": "application/json" } : {}) },
      body: opts.body ? JSON.stringify(opts.body) : undefined,
    });
    return { status: res.status, body: await res.json() as Record<string, unknown> };
  }

  /** Asserts a successful run and that the project it reports exists for its user, as the only one, over REST. */
  async function expectProjectCreated(r: CommandResult, account: { email: string; password: string }, name: string) {
    expect(r.code, `exit code; stderr:\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`registered ${account.email}`);
    expect(r.stdout).toContain("over REST: matches what gRPC created");
    const id = /^created project (\S+) /m.exec(r.stdout)?.[1];
    expect(id, r.stdout).toBeDefined();
    const login = await rest("POST", "/api/v1/auth/login", { body: account });
    expect(login.status).toBe(200);
    const token = login.body.accessToken as string;
    const project = await rest("GET", `/api/v1/projects/${id}`, { token });
    expect(project).toMatchObject({ status: 200, body: { id, name } });
    const list = await rest("GET", "/api/v1/projects", { token });
    expect(list.body).toMatchObject({ total: 1, projects: [{ id }] });
  }

  /** Asserts a run that failed as its user should see it: exit 1, the RPC, the gRPC status and its BadRequest detail. */
  function expectReportedInvalidPassword(r: CommandResult) {
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(/Register failed: gRPC status INVALID_ARGUMENT \(3\): password: must be 8 to 128 characters/);
    expect(r.stderr).toMatch(/detail google\.rpc\.BadRequest: \{\s*"fieldViolations":\s*\[\s*\{\s*"field":\s*"password"/);
    expect(r.stderr).toMatch(/request id: \S+/);
  }

  describeWithToolchain(python, "examples/python", (py) => {
    const client = (args: string[]) => runCommand(py, ["examples/python/mesh_client.py", "--addr", mesh.gatewayAddress, ...args], { cwd: root, timeoutMs: 60_000 });

    beforeAll(() => generate("python", { MESH_PYTHON: py }), 240_000);

    it("registers, logs in and creates a project over gRPC, then reads it back over REST", async () => {
      const account = newAccount("python");
      const r = timed("python example", await client(["--email", account.email, "--password", account.password, "--project", "from python"]));
      await expectProjectCreated(r, account, "from python");
    });

    it("exits 1 with the failed RPC's status code, message and details", async () => {
      expectReportedInvalidPassword(await client(["--password", "short"]));
    });
  });

  describeWithToolchain(go, "examples/go", (goCommand) => {
    let dir = "";
    const client = (args: string[]) => runCommand(join(dir, "mesh-client"), ["-addr", mesh.gatewayAddress, ...args], { cwd: root, timeoutMs: 60_000 });

    beforeAll(async () => {
      await generate("go");
      dir = await mkdtemp(join(tmpdir(), "mesh-go-example-"));
      // Modules from go.sum (the Go module proxy, or the module cache); builds cached in GOCACHE.
      const r = timed("go build", await runCommand(goCommand, ["build", "-o", join(dir, "mesh-client"), "."], { cwd: join(root, "examples", "go"), timeoutMs: 300_000 }));
      expect(r.code, `go build:\n${r.stderr}`).toBe(0);
    }, 600_000);

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("registers, logs in and creates a project over gRPC, then reads it back over REST", async () => {
      const account = newAccount("go");
      const r = timed("go example", await client(["-email", account.email, "-password", account.password, "-project", "from go"]));
      await expectProjectCreated(r, account, "from go");
    });

    it("exits 1 with the failed RPC's status code, message and details", async () => {
      expectReportedInvalidPassword(await client(["-password", "short"]));
    });
  });
});

import { createHash, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  KeyEventKind, ListApiKeysResponseSchema, RouteEventKind,
  type CreateRouteRequestSchema, type ProjectService, type RouteConfig, type WatchKeyEventsResponse, type WatchRoutesResponse,
} from "../../gen/mesh/project/v1/project_pb.js";
import { fieldViolationsOf } from "../../lib/errors.js";
import { callWithProto, healthCheck, reflectFiles, reflectServices } from "../support/grpc-generic.js";
import { describeWithServer } from "../support/integration.js";
import { as, recordStream, startProjectHarness, USAGE_FLUSH_MS, type ProjectHarness, type StreamRecorder } from "../support/project-harness.js";
import { rejectionOf } from "../support/rejection.js";

type ProjectClient = Client<typeof ProjectService>;
type RouteInit = Omit<MessageInitShape<typeof CreateRouteRequestSchema>, "projectId">;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Code, message and violated fields of a failed call. */
async function failure(call: Promise<unknown>): Promise<{ code: Code; message: string; fields: string[]; err: ConnectError }> {
  const err = await rejectionOf(call);
  return { code: err.code, message: err.rawMessage, fields: fieldViolationsOf(err).map((v) => v.field).sort(), err };
}

/** Aborts the stream when the test ends, passed or failed. */
function track<T>(rec: StreamRecorder<T>): StreamRecorder<T> {
  onTestFinished(() => rec.close());
  return rec;
}

const watchKeys = (client: ProjectClient, afterVersion = 0n) =>
  track(recordStream<WatchKeyEventsResponse>((signal) => client.watchKeyEvents({ afterVersion }, { signal })));
const watchRoutes = (client: ProjectClient, afterVersion = 0n) =>
  track(recordStream<WatchRoutesResponse>((signal) => client.watchRoutes({ afterVersion }, { signal })));

const keyEvents = (rec: StreamRecorder<WatchKeyEventsResponse>) => rec.received.map((r) => r.message.event!);
const routeEvents = (rec: StreamRecorder<WatchRoutesResponse>) => rec.received.map((r) => r.message.event!);

function expectIncreasing(versions: readonly bigint[], after = 0n): void {
  let last = after;
  for (const v of versions) {
    expect(v).toBeGreaterThan(last);
    last = v;
  }
}

function projectSuite(store: string, databaseUrl: () => string | undefined) {
  describe(`project service over gRPC (${store})`, () => {
    let h: ProjectHarness;
    let routeSeq = 0;
    const newUser = () => `user-${randomUUID()}`;

    beforeAll(async () => {
      h = await startProjectHarness({ databaseUrl: databaseUrl() });
    });
    afterAll(() => h?.stop());

    const makeProject = async (owner: string, init: { name?: string; description?: string } = {}, client = h.client) => {
      const { project } = await client.createProject({ name: `project ${randomUUID()}`, ...init }, as(owner));
      return project!;
    };
    const makeKey = (owner: string, projectId: string, init: { name?: string; expiresAt?: Date } = {}, client = h.client) =>
      client.createApiKey({
        projectId, name: init.name ?? "ci", expiresAt: init.expiresAt ? timestampFromDate(init.expiresAt) : undefined,
      }, as(owner));
    const makeRoute = async (owner: string, projectId: string, init: RouteInit = {}) => {
      const { route } = await h.client.createRoute({
        method: "GET", path: `/api/v1/things/t${++routeSeq}/{id}`, service: "project", ...init, projectId,
      }, as(owner));
      return route!;
    };
    const verify = (key: string, client = h.client) => client.verifyApiKey({ keyHash: sha256(key) });

    /**
     * Makes sure a key watcher opened "from now on" is live: revokes fresh
     * probe keys (through `via`) until the watcher has seen one, bounded.
     */
    async function primeKeyWatch(rec: StreamRecorder<WatchKeyEventsResponse>, via = h.client): Promise<void> {
      const owner = newUser();
      const project = await makeProject(owner, { name: "probe" }, via);
      const deadline = performance.now() + 5_000;
      while (performance.now() < deadline && !rec.done) {
        const probe = await makeKey(owner, project.id, { name: "probe" }, via);
        await via.revokeApiKey({ id: probe.id }, as(owner));
        const seen = await rec.waitFor((m) => m.event?.keyId === probe.id, { timeoutMs: 500, what: "probe revocation" })
          .then(() => true, () => false);
        if (seen) return;
      }
      if (rec.done) throw new Error(`the key watch ended before it saw a probe revocation: ${String(await rec.ended())}`);
      throw new Error("the key watcher saw no probe revocation within 5 s");
    }

    /** Opens WatchRoutes from 0 and waits for its opening snapshot. */
    async function routeWatchFromSnapshot(client = h.client) {
      const rec = watchRoutes(client);
      const first = await rec.waitForCount(1);
      const snapshot = first[0]!.message.event!;
      expect(snapshot.kind).toBe(RouteEventKind.SNAPSHOT);
      return { rec, snapshot };
    }

    describe("generic gRPC", () => {
      it("reports SERVING through grpc.health.v1 for the server and the project service", async () => {
        expect(await healthCheck(h.address, "")).toBe("SERVING");
        expect(await healthCheck(h.address, "mesh.project.v1.ProjectService")).toBe("SERVING");
      });

      it("lists and describes mesh.project.v1.ProjectService through grpc.reflection.v1", async () => {
        expect(await reflectServices(h.address)).toEqual(expect.arrayContaining(["mesh.project.v1.ProjectService", "grpc.health.v1.Health"]));
        expect(await reflectFiles(h.address, { file_containing_symbol: "mesh.project.v1.ProjectService" }))
          .toContain("mesh/project/v1/project.proto");
      });

      it("serves a plain grpc-js client that knows only proto/ (create and get a project)", async () => {
        const owner = newUser();
        const call = (method: string, req: object) => callWithProto(h.address, "mesh/project/v1/project.proto",
          "mesh.project.v1.ProjectService", method, req, as(owner).headers);
        const created = (await call("CreateProject", { name: "Plain", description: "from proto/" })).project as { id: string };
        const got = (await call("GetProject", { id: created.id })).project as { name: string; description: string };
        expect(got).toMatchObject({ name: "Plain", description: "from proto/" });
      });
    });

    describe("identity and tenancy", () => {
      const unauthenticatedCalls: [string, (c: ProjectClient) => Promise<unknown>][] = [
        ["CreateProject", (c) => c.createProject({ name: "x" })],
        ["ListProjects", (c) => c.listProjects({})],
        ["GetProject", (c) => c.getProject({ id: randomUUID() })],
        ["ReplaceProject", (c) => c.replaceProject({ id: randomUUID(), name: "x" })],
        ["UpdateProject", (c) => c.updateProject({ id: randomUUID(), project: { name: "x" }, updateMask: { paths: ["name"] } })],
        ["DeleteProject", (c) => c.deleteProject({ id: randomUUID() })],
        ["CreateApiKey", (c) => c.createApiKey({ projectId: randomUUID(), name: "x" })],
        ["ListApiKeys", (c) => c.listApiKeys({ projectId: randomUUID() })],
        ["RevokeApiKey", (c) => c.revokeApiKey({ id: randomUUID() })],
        ["CreateRoute", (c) => c.createRoute({ projectId: randomUUID(), method: "GET", path: "/a", service: "project" })],
        ["ListRoutes", (c) => c.listRoutes({ projectId: randomUUID() })],
        ["GetRoute", (c) => c.getRoute({ id: randomUUID() })],
        ["UpdateRoute", (c) => c.updateRoute({ id: randomUUID(), route: { active: false }, updateMask: { paths: ["active"] } })],
        ["DeleteRoute", (c) => c.deleteRoute({ id: randomUUID() })],
      ];
      it.each(unauthenticatedCalls)("answers %s without identity metadata with UNAUTHENTICATED", async (_name, call) => {
        expect((await failure(call(h.client))).code).toBe(Code.Unauthenticated);
      });

      it("answers another user's project exactly like a missing one (NOT_FOUND) on every RPC that takes its id", async () => {
        const a = newUser();
        const b = newUser();
        const project = await makeProject(a, { description: "A's" });
        const missing = await failure(h.client.getProject({ id: randomUUID() }, as(b)));
        const calls: [string, () => Promise<unknown>][] = [
          ["GetProject", () => h.client.getProject({ id: project.id }, as(b))],
          ["ReplaceProject", () => h.client.replaceProject({ id: project.id, name: "taken over" }, as(b))],
          ["UpdateProject", () => h.client.updateProject({ id: project.id, project: { description: "x" }, updateMask: { paths: ["description"] } }, as(b))],
          ["DeleteProject", () => h.client.deleteProject({ id: project.id }, as(b))],
          ["CreateApiKey", () => h.client.createApiKey({ projectId: project.id, name: "stolen" }, as(b))],
          ["ListApiKeys", () => h.client.listApiKeys({ projectId: project.id }, as(b))],
          ["CreateRoute", () => h.client.createRoute({ projectId: project.id, method: "GET", path: "/x", service: "project" }, as(b))],
          ["ListRoutes", () => h.client.listRoutes({ projectId: project.id }, as(b))],
        ];
        for (const [name, call] of calls) {
          const f = await failure(call());
          expect({ name, code: f.code, message: f.message }).toEqual({ name, code: Code.NotFound, message: missing.message });
        }
        const still = (await h.client.getProject({ id: project.id }, as(a))).project!;
        expect(still).toEqual(project);
        expect((await h.client.listApiKeys({ projectId: project.id }, as(a))).total).toBe(0);
        expect((await h.client.listRoutes({ projectId: project.id }, as(a))).total).toBe(0);
      });

      it("answers another user's API key with NOT_FOUND on RevokeApiKey and leaves it working", async () => {
        const a = newUser();
        const project = await makeProject(a);
        const key = await makeKey(a, project.id);
        const f = await failure(h.client.revokeApiKey({ id: key.id }, as(newUser())));
        expect(f.code).toBe(Code.NotFound);
        expect((await verify(key.key)).valid).toBe(true);
      });

      it("answers another user's route config with NOT_FOUND on GetRoute, UpdateRoute and DeleteRoute", async () => {
        const a = newUser();
        const b = newUser();
        const project = await makeProject(a);
        const route = await makeRoute(a, project.id, { rateLimit: 10 });
        const calls: [string, () => Promise<unknown>][] = [
          ["GetRoute", () => h.client.getRoute({ id: route.id }, as(b))],
          ["UpdateRoute", () => h.client.updateRoute({ id: route.id, route: { rateLimit: 1 }, updateMask: { paths: ["rate_limit"] } }, as(b))],
          ["DeleteRoute", () => h.client.deleteRoute({ id: route.id }, as(b))],
        ];
        for (const [name, call] of calls) {
          expect({ name, code: (await failure(call())).code }).toEqual({ name, code: Code.NotFound });
        }
        expect((await h.client.getRoute({ id: route.id }, as(a))).route).toEqual(route);
      });

      it("lets an admin list every user's projects", async () => {
        const a = await makeProject(newUser());
        const b = await makeProject(newUser());
        const admin = as(newUser(), ["user", "admin"]);
        const { projects, total } = await h.client.listProjects({ limit: 100 }, admin);
        expect(projects.map((p) => p.id)).toEqual(expect.arrayContaining([a.id, b.id]));
        expect(total).toBeGreaterThanOrEqual(2);
      });

      it("lets an admin get another user's project", async () => {
        const project = await makeProject(newUser());
        expect((await h.client.getProject({ id: project.id }, as(newUser(), ["user", "admin"]))).project).toEqual(project);
      });

      it("lists only the caller's own projects for a plain user", async () => {
        const a = newUser();
        const mine = await makeProject(a);
        await makeProject(newUser());
        const { projects, total } = await h.client.listProjects({ limit: 100 }, as(a));
        expect(projects.map((p) => p.id)).toEqual([mine.id]);
        expect(total).toBe(1);
      });
    });

    describe("projects", () => {
      it("creates a project with id, name, description and equal timestamps", async () => {
        const { project } = await h.client.createProject({ name: "Shop", description: "the web shop" }, as(newUser()));
        expect(project!.id).toMatch(uuid);
        expect(project).toMatchObject({ name: "Shop", description: "the web shop" });
        expect(project!.createdAt).toBeDefined();
        expect(timestampMs(project!.updatedAt!)).toBe(timestampMs(project!.createdAt!));
      });

      it("refuses an empty or over-long name with INVALID_ARGUMENT naming name", async () => {
        for (const name of ["", "   ", "x".repeat(101)]) {
          const f = await failure(h.client.createProject({ name }, as(newUser())));
          expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["name"]]);
        }
      });

      it("refuses a second project of the same name for one owner with ALREADY_EXISTS", async () => {
        const owner = newUser();
        await makeProject(owner, { name: "Twin" });
        expect((await failure(makeProject(owner, { name: "Twin" }))).code).toBe(Code.AlreadyExists);
      });

      it("refuses a description over 1000 characters with INVALID_ARGUMENT naming description", async () => {
        const f = await failure(h.client.createProject({ name: "Wordy", description: "x".repeat(1001) }, as(newUser())));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["description"]]);
      });

      it("refuses renaming a project to a name the owner already uses with ALREADY_EXISTS", async () => {
        const owner = newUser();
        await makeProject(owner, { name: "Taken" });
        const other = await makeProject(owner, { name: "Free" });
        const f = await failure(h.client.updateProject({ id: other.id, project: { name: "Taken" }, updateMask: { paths: ["name"] } }, as(owner)));
        expect(f.code).toBe(Code.AlreadyExists);
        expect((await h.client.getProject({ id: other.id }, as(owner))).project).toEqual(other);
      });

      it("lets two owners use the same project name", async () => {
        await makeProject(newUser(), { name: "Common" });
        expect((await makeProject(newUser(), { name: "Common" })).name).toBe("Common");
      });

      it("gets a project by id", async () => {
        const owner = newUser();
        const project = await makeProject(owner, { description: "d" });
        expect((await h.client.getProject({ id: project.id }, as(owner))).project).toEqual(project);
      });

      it("answers NOT_FOUND for a missing or malformed project id", async () => {
        for (const id of [randomUUID(), "not-a-uuid", ""]) {
          expect((await failure(h.client.getProject({ id }, as(newUser())))).code).toBe(Code.NotFound);
        }
      });

      it("pages the caller's projects with page, limit and total", async () => {
        const owner = newUser();
        for (const name of ["a", "b", "c", "d", "e"]) await makeProject(owner, { name });
        const res = await h.client.listProjects({ page: 2, limit: 2, sort: "name", order: "asc" }, as(owner));
        expect(res.projects.map((p) => p.name)).toEqual(["c", "d"]);
        expect([res.total, res.page, res.limit]).toEqual([5, 2, 2]);
        const last = await h.client.listProjects({ page: 3, limit: 2, sort: "name", order: "asc" }, as(owner));
        expect(last.projects.map((p) => p.name)).toEqual(["e"]);
        const beyond = await h.client.listProjects({ page: 4, limit: 2, sort: "name", order: "asc" }, as(owner));
        expect([beyond.projects.length, beyond.total]).toEqual([0, 5]);
      });

      it("sorts projects by name in either order", async () => {
        const owner = newUser();
        for (const name of ["b", "c", "a"]) await makeProject(owner, { name });
        const asc = await h.client.listProjects({ sort: "name", order: "asc" }, as(owner));
        const desc = await h.client.listProjects({ sort: "name", order: "desc" }, as(owner));
        expect(asc.projects.map((p) => p.name)).toEqual(["a", "b", "c"]);
        expect(desc.projects.map((p) => p.name)).toEqual(["c", "b", "a"]);
      });

      it("defaults to page 1, limit 20, newest first", async () => {
        const owner = newUser();
        for (const name of ["first", "second", "third"]) {
          await makeProject(owner, { name });
          await sleep(5);
        }
        const res = await h.client.listProjects({}, as(owner));
        expect(res.projects.map((p) => p.name)).toEqual(["third", "second", "first"]);
        expect([res.total, res.page, res.limit]).toEqual([3, 1, 20]);
      });

      it("sorts by updatedAt so the last changed project comes first", async () => {
        const owner = newUser();
        const first = await makeProject(owner, { name: "first" });
        await sleep(5);
        await makeProject(owner, { name: "second" });
        await sleep(5);
        await h.client.updateProject({ id: first.id, project: { description: "touched" }, updateMask: { paths: ["description"] } }, as(owner));
        const res = await h.client.listProjects({ sort: "updatedAt", order: "desc" }, as(owner));
        expect(res.projects.map((p) => p.name)).toEqual(["first", "second"]);
      });

      it("refuses limit 101 with INVALID_ARGUMENT naming limit", async () => {
        const f = await failure(h.client.listProjects({ limit: 101 }, as(newUser())));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["limit"]]);
      });

      it("refuses limit 101 on ListApiKeys and ListRoutes with INVALID_ARGUMENT naming limit", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        for (const call of [
          () => h.client.listApiKeys({ projectId: project.id, limit: 101 }, as(owner)),
          () => h.client.listRoutes({ projectId: project.id, limit: 101 }, as(owner)),
        ]) {
          const f = await failure(call());
          expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["limit"]]);
        }
      });

      it("refuses an unknown sort, an unknown order and a negative page, naming each field", async () => {
        const f = await failure(h.client.listProjects({ page: -1, sort: "owner", order: "sideways" }, as(newUser())));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["order", "page", "sort"]]);
      });

      it("replaces every editable field, clearing a description left out", async () => {
        const owner = newUser();
        const project = await makeProject(owner, { name: "Old", description: "old text" });
        const { project: replaced } = await h.client.replaceProject({ id: project.id, name: "New" }, as(owner));
        expect(replaced).toMatchObject({ id: project.id, name: "New", description: "" });
        expect(timestampMs(replaced!.createdAt!)).toBe(timestampMs(project.createdAt!));
        expect(timestampMs(replaced!.updatedAt!)).toBeGreaterThanOrEqual(timestampMs(project.updatedAt!));
        expect((await h.client.getProject({ id: project.id }, as(owner))).project).toEqual(replaced);
      });

      it("refuses a replace without a name with INVALID_ARGUMENT naming name", async () => {
        const owner = newUser();
        const project = await makeProject(owner, { name: "Keep" });
        const f = await failure(h.client.replaceProject({ id: project.id, name: "", description: "x" }, as(owner)));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["name"]]);
        expect((await h.client.getProject({ id: project.id }, as(owner))).project).toEqual(project);
      });

      it("changes only the description when update_mask names description", async () => {
        const owner = newUser();
        const project = await makeProject(owner, { name: "Stay", description: "before" });
        const { project: updated } = await h.client.updateProject({
          id: project.id, project: { name: "Ignored", description: "after" }, updateMask: { paths: ["description"] },
        }, as(owner));
        expect(updated).toMatchObject({ id: project.id, name: "Stay", description: "after" });
        expect((await h.client.getProject({ id: project.id }, as(owner))).project).toEqual(updated);
      });

      it("refuses an update_mask path that is not an editable field with INVALID_ARGUMENT naming update_mask", async () => {
        const owner = newUser();
        const project = await makeProject(owner, { name: "Masked" });
        const f = await failure(h.client.updateProject({
          id: project.id, project: { name: "x", id: randomUUID() }, updateMask: { paths: ["id"] },
        }, as(owner)));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["update_mask"]]);
        expect((await h.client.getProject({ id: project.id }, as(owner))).project).toEqual(project);
      });

      it("deletes a project", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        await h.client.deleteProject({ id: project.id }, as(owner));
        expect((await failure(h.client.getProject({ id: project.id }, as(owner)))).code).toBe(Code.NotFound);
        expect((await h.client.listProjects({}, as(owner))).total).toBe(0);
        expect((await failure(h.client.deleteProject({ id: project.id }, as(owner)))).code).toBe(Code.NotFound);
      });
    });

    describe("API keys", () => {
      it("creates a key shown once as gw_ and 43 base62 characters, with its display prefix", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id, { name: "deploy" });
        expect(key.key).toMatch(/^gw_[0-9A-Za-z]{43}$/);
        expect(key.prefix).toBe(key.key.slice(0, 11));
        expect(key.id).toMatch(uuid);
        expect(key.name).toBe("deploy");
        expect(key.createdAt).toBeDefined();
        expect(key.expiresAt).toBeUndefined();
      });

      it("lists keys newest first without the plaintext key or its hash", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const older = await makeKey(owner, project.id, { name: "older" });
        await sleep(5);
        const newer = await makeKey(owner, project.id, { name: "newer" });
        const res = await h.client.listApiKeys({ projectId: project.id }, as(owner));
        expect(res.keys.map((k) => [k.id, k.name, k.prefix])).toEqual([
          [newer.id, "newer", newer.prefix], [older.id, "older", older.prefix],
        ]);
        expect([res.total, res.page, res.limit]).toEqual([2, 1, 20]);
        const json = toJsonString(ListApiKeysResponseSchema, res);
        for (const secret of [older.key, newer.key, sha256(older.key), sha256(newer.key)]) {
          expect(json).not.toContain(secret);
        }
        expect(json).not.toMatch(/[0-9a-f]{64}/);
      });

      it("verifies the SHA-256 of a live key as valid, attributed to the project owner", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id, { name: "verify me" });
        const res = await verify(key.key);
        expect(res.valid).toBe(true);
        expect(res.key).toMatchObject({ id: key.id, projectId: project.id, userId: owner, name: "verify me" });
        expect(res.key!.expiresAt).toBeUndefined();
      });

      it("answers valid false for an unknown key", async () => {
        const res = await verify(`gw_${"0".repeat(43)}`);
        expect(res.valid).toBe(false);
        expect(res.key).toBeUndefined();
      });

      it("refuses a key hash that is not lower-case hex SHA-256 with INVALID_ARGUMENT naming key_hash", async () => {
        const f = await failure(h.client.verifyApiKey({ keyHash: "gw_plaintext" }));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["key_hash"]]);
      });

      it("answers valid false once a key is revoked, and lists it with revokedAt", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        expect((await verify(key.key)).valid).toBe(false);
        const listed = (await h.client.listApiKeys({ projectId: project.id }, as(owner))).keys[0]!;
        expect(listed.id).toBe(key.id);
        expect(listed.revokedAt).toBeDefined();
      });

      it("succeeds when revoking an already revoked key and changes nothing", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        const before = (await h.client.listApiKeys({ projectId: project.id }, as(owner))).keys[0]!;
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        const after = (await h.client.listApiKeys({ projectId: project.id }, as(owner))).keys[0]!;
        expect(after).toEqual(before);
        expect((await verify(key.key)).valid).toBe(false);
      });

      it("answers NOT_FOUND when revoking a missing key", async () => {
        expect((await failure(h.client.revokeApiKey({ id: randomUUID() }, as(newUser())))).code).toBe(Code.NotFound);
      });

      it("answers valid false once a key's expiry has passed", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const expiresAt = new Date(Date.now() + 2_000);
        const key = await makeKey(owner, project.id, { expiresAt });
        expect(timestampDate(key.expiresAt!).getTime()).toBe(expiresAt.getTime());
        const live = await verify(key.key);
        expect(live.valid).toBe(true);
        expect(timestampDate(live.key!.expiresAt!).getTime()).toBe(expiresAt.getTime());
        await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
        expect((await verify(key.key)).valid).toBe(false);
      });

      it("refuses an expiry in the past with INVALID_ARGUMENT naming expires_at", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const f = await failure(makeKey(owner, project.id, { expiresAt: new Date(Date.now() - 60_000) }));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["expires_at"]]);
      });

      it("records the key's last use after a verification", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        const listed = async () => (await h.client.listApiKeys({ projectId: project.id }, as(owner))).keys[0]!;
        expect((await listed()).lastUsedAt).toBeUndefined();
        const usedFrom = Date.now();
        await verify(key.key);
        let lastUsedAt: number | undefined;
        for (let i = 0; i < 120 && lastUsedAt === undefined; i++) {
          const stamp = (await listed()).lastUsedAt;
          if (stamp) lastUsedAt = timestampMs(stamp);
          else await sleep(25);
        }
        expect(lastUsedAt, "lastUsedAt within 3 s of a verification").toBeDefined();
        expect(lastUsedAt!).toBeGreaterThanOrEqual(usedFrom - 1_000);
        expect(lastUsedAt!).toBeLessThanOrEqual(Date.now() + 1_000);
      });

      it("records a key's use at most once a minute, not on every verification", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        const listed = async () => (await h.client.listApiKeys({ projectId: project.id }, as(owner))).keys[0]!;
        await verify(key.key);
        let first: number | undefined;
        for (let i = 0; i < 120 && first === undefined; i++) {
          const stamp = (await listed()).lastUsedAt;
          if (stamp) first = timestampMs(stamp);
          else await sleep(25);
        }
        expect(first, "lastUsedAt within 3 s of a verification").toBeDefined();
        await sleep(5);
        await verify(key.key);
        await sleep(USAGE_FLUSH_MS * 4);
        expect(timestampMs((await listed()).lastUsedAt!)).toBe(first);
      });
    });

    describe("WatchKeyEvents", () => {
      it("delivers a revocation to a watcher within one second", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        const rec = watchKeys(h.client);
        await primeKeyWatch(rec);
        const revokedAt = performance.now();
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        const seen = await rec.waitFor((m) => m.event?.keyId === key.id, { timeoutMs: 3_000, what: "the revocation" });
        expect(seen.at - revokedAt).toBeLessThan(1_000);
        expect(seen.message.event).toMatchObject({
          kind: KeyEventKind.REVOKED, keyId: key.id, keyHash: sha256(key.key), projectId: project.id,
        });
        expect(seen.message.event!.occurredAt).toBeDefined();
        expectIncreasing(keyEvents(rec).map((e) => e.version));
      });

      it("announces each live key of a deleted project as PROJECT_DELETED", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const live = [await makeKey(owner, project.id), await makeKey(owner, project.id), await makeKey(owner, project.id)];
        const revoked = await makeKey(owner, project.id);
        await h.client.revokeApiKey({ id: revoked.id }, as(owner));
        const rec = watchKeys(h.client);
        await primeKeyWatch(rec);
        const from = rec.received.length;
        await h.client.deleteProject({ id: project.id }, as(owner));
        // A marker revocation after the deletion: once it arrives, every event of the deletion has too.
        const markerOwner = newUser();
        const marker = await makeKey(markerOwner, (await makeProject(markerOwner)).id);
        await h.client.revokeApiKey({ id: marker.id }, as(markerOwner));
        await rec.waitFor((m) => m.event?.keyId === marker.id, { from, what: "the marker revocation" });
        const events = keyEvents(rec).slice(from).filter((e) => e.projectId === project.id);
        expect(events.map((e) => e.kind)).toEqual(live.map(() => KeyEventKind.PROJECT_DELETED));
        expect(events.map((e) => [e.keyId, e.keyHash]).sort()).toEqual(live.map((k) => [k.id, sha256(k.key)]).sort());
        expectIncreasing(keyEvents(rec).map((e) => e.version));
      });

      it("resumes after a disconnect from the last seen version with exactly the missed events, in order", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const keys: { id: string; key: string }[] = [];
        for (let i = 0; i < 5; i++) keys.push(await makeKey(owner, project.id, { name: `k${i}` }));
        const first = watchKeys(h.client);
        await primeKeyWatch(first);
        for (const k of keys.slice(0, 2)) await h.client.revokeApiKey({ id: k.id }, as(owner));
        await first.waitFor((m) => m.event?.keyId === keys[1]!.id, { what: "the second revocation" });
        expect(keyEvents(first).filter((e) => e.projectId === project.id).map((e) => e.keyId)).toEqual([keys[0]!.id, keys[1]!.id]);
        const lastSeen = keyEvents(first).at(-1)!.version;
        await first.close();

        for (const k of keys.slice(2)) await h.client.revokeApiKey({ id: k.id }, as(owner));
        const resumed = watchKeys(h.client, lastSeen);
        await resumed.waitFor((m) => m.event?.keyId === keys[4]!.id, { what: "the last missed revocation" });
        // A marker after reconnecting: anything duplicated or extra would arrive before it.
        const marker = await makeKey(owner, project.id, { name: "marker" });
        await h.client.revokeApiKey({ id: marker.id }, as(owner));
        await resumed.waitFor((m) => m.event?.keyId === marker.id, { what: "the marker revocation" });
        const events = keyEvents(resumed);
        expect(events.map((e) => e.keyId)).toEqual([keys[2]!.id, keys[3]!.id, keys[4]!.id, marker.id]);
        expect(events.every((e) => e.kind === KeyEventKind.REVOKED)).toBe(true);
        expectIncreasing(events.map((e) => e.version), lastSeen);
      });

      it("announces a key revoked twice only once", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        const rec = watchKeys(h.client);
        await primeKeyWatch(rec);
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        const marker = await makeKey(owner, project.id, { name: "marker" });
        await h.client.revokeApiKey({ id: marker.id }, as(owner));
        await rec.waitFor((m) => m.event?.keyId === marker.id, { what: "the marker revocation" });
        expect(keyEvents(rec).filter((e) => e.projectId === project.id).map((e) => e.keyId)).toEqual([key.id, marker.id]);
      });

      it("delivers every one of many concurrent revocations exactly once, in version order", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const keys = await Promise.all(Array.from({ length: 20 }, (_, i) => makeKey(owner, project.id, { name: `k${i}` })));
        const rec = watchKeys(h.client);
        await primeKeyWatch(rec);
        await Promise.all(keys.map((k) => h.client.revokeApiKey({ id: k.id }, as(owner))));
        const marker = await makeKey(owner, project.id, { name: "marker" });
        await h.client.revokeApiKey({ id: marker.id }, as(owner));
        await rec.waitFor((m) => m.event?.keyId === marker.id, { what: "the marker revocation" });
        const ids = keyEvents(rec).filter((e) => e.projectId === project.id).map((e) => e.keyId);
        expect(ids.slice(0, -1).sort()).toEqual(keys.map((k) => k.id).sort());
        expect(ids.at(-1)).toBe(marker.id);
        expectIncreasing(keyEvents(rec).map((e) => e.version));
      });

      it("replays the events after a version to a watcher that starts late", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const a = await makeKey(owner, project.id);
        const b = await makeKey(owner, project.id);
        const rec = watchKeys(h.client);
        await primeKeyWatch(rec);
        const before = keyEvents(rec).at(-1)!.version;
        await rec.close();
        await h.client.revokeApiKey({ id: a.id }, as(owner));
        await h.client.revokeApiKey({ id: b.id }, as(owner));
        const late = watchKeys(h.client, before);
        await late.waitForCount(2);
        expect(keyEvents(late).map((e) => e.keyId)).toEqual([a.id, b.id]);
      });
    });

    describe("route configs", () => {
      it("creates a route config with the contract's fields", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const { route } = await h.client.createRoute({
          projectId: project.id, method: "GET", path: "/api/v1/projects/{id}", service: "project", rateLimit: 120, cacheTtlSeconds: 30,
        }, as(owner));
        expect(route!.id).toMatch(uuid);
        expect(route).toMatchObject({
          projectId: project.id, method: "GET", path: "/api/v1/projects/{id}", service: "project", rateLimit: 120, cacheTtlSeconds: 30, active: true,
        });
        expect(route!.createdAt).toBeDefined();
        expect(timestampMs(route!.updatedAt!)).toBe(timestampMs(route!.createdAt!));
      });

      it("leaves unset limits unset and honours active false", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id, { active: false });
        expect(route.rateLimit).toBeUndefined();
        expect(route.cacheTtlSeconds).toBeUndefined();
        expect(route.active).toBe(false);
      });

      const badRoutes: [string, RouteInit][] = [
        ["path", { path: "/api/v1/{unclosed" }],
        ["service", { service: "billing" }],
        ["rate_limit", { rateLimit: 0 }],
        ["method", { method: "TRACE" }],
        ["cache_ttl_seconds", { cacheTtlSeconds: 86_401 }],
      ];
      it.each(badRoutes)("refuses a bad %s with INVALID_ARGUMENT naming it", async (field, bad) => {
        const owner = newUser();
        const project = await makeProject(owner);
        const f = await failure(makeRoute(owner, project.id, bad));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, [field]]);
      });

      it("names every bad field of a route config at once", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const f = await failure(makeRoute(owner, project.id, { path: "no-slash", service: "billing", rateLimit: 0 }));
        expect([f.code, f.fields]).toEqual([Code.InvalidArgument, ["path", "rate_limit", "service"]]);
      });

      it("refuses a second route config for the same project, method and path with ALREADY_EXISTS", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        await makeRoute(owner, project.id, { method: "POST", path: "/api/v1/orders" });
        const f = await failure(makeRoute(owner, project.id, { method: "POST", path: "/api/v1/orders", service: "analytics" }));
        expect(f.code).toBe(Code.AlreadyExists);
      });

      it("allows the same method and path in another project", async () => {
        const owner = newUser();
        const one = await makeProject(owner);
        const two = await makeProject(owner);
        await makeRoute(owner, one.id, { path: "/api/v1/shared" });
        expect((await makeRoute(owner, two.id, { path: "/api/v1/shared" })).projectId).toBe(two.id);
      });

      it("lists a project's route configs oldest first, one page at a time", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const routes: RouteConfig[] = [];
        for (let i = 0; i < 3; i++) {
          routes.push(await makeRoute(owner, project.id));
          await sleep(5);
        }
        const all = await h.client.listRoutes({ projectId: project.id }, as(owner));
        expect(all.routes).toEqual(routes);
        expect([all.total, all.page, all.limit]).toEqual([3, 1, 20]);
        const second = await h.client.listRoutes({ projectId: project.id, page: 2, limit: 2 }, as(owner));
        expect(second.routes.map((r) => r.id)).toEqual([routes[2]!.id]);
        expect(second.total).toBe(3);
      });

      it("gets a route config by id", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id, { cacheTtlSeconds: 0 });
        const got = (await h.client.getRoute({ id: route.id }, as(owner))).route!;
        expect(got).toEqual(route);
        expect(got.cacheTtlSeconds).toBe(0);
      });

      it("changes only the fields named in update_mask", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id, { rateLimit: 60, cacheTtlSeconds: 10 });
        const { route: updated } = await h.client.updateRoute({
          id: route.id, route: { rateLimit: 5, path: "/ignored", service: "auth", active: false }, updateMask: { paths: ["rate_limit"] },
        }, as(owner));
        expect(updated).toMatchObject({ ...route, rateLimit: 5, updatedAt: updated!.updatedAt });
        expect((await h.client.getRoute({ id: route.id }, as(owner))).route).toEqual(updated);
      });

      it("clears an optional field named in update_mask but left unset", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id, { rateLimit: 60, cacheTtlSeconds: 10 });
        const { route: updated } = await h.client.updateRoute({ id: route.id, route: {}, updateMask: { paths: ["cache_ttl_seconds"] } }, as(owner));
        expect(updated!.cacheTtlSeconds).toBeUndefined();
        expect(updated!.rateLimit).toBe(60);
      });

      it("refuses bad values and unknown update_mask paths in UpdateRoute with INVALID_ARGUMENT", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id, { rateLimit: 60 });
        const unknown = await failure(h.client.updateRoute({ id: route.id, route: { projectId: randomUUID() }, updateMask: { paths: ["project_id"] } }, as(owner)));
        expect([unknown.code, unknown.fields]).toEqual([Code.InvalidArgument, ["update_mask"]]);
        const bad = await failure(h.client.updateRoute({ id: route.id, route: { rateLimit: 0, service: "nope" }, updateMask: { paths: ["rate_limit", "service"] } }, as(owner)));
        expect(bad.code).toBe(Code.InvalidArgument);
        expect(bad.fields.map((f) => f.replace(/^route\./, ""))).toEqual(["rate_limit", "service"]);
        expect((await h.client.getRoute({ id: route.id }, as(owner))).route).toEqual(route);
      });

      it("keeps both changes of concurrent UpdateRoute calls that name different fields", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const routes = await Promise.all(Array.from({ length: 5 }, () => makeRoute(owner, project.id, { rateLimit: 60, cacheTtlSeconds: 10 })));
        await Promise.all(routes.flatMap((r) => [
          h.client.updateRoute({ id: r.id, route: { rateLimit: 5 }, updateMask: { paths: ["rate_limit"] } }, as(owner)),
          h.client.updateRoute({ id: r.id, route: { cacheTtlSeconds: 99 }, updateMask: { paths: ["cache_ttl_seconds"] } }, as(owner)),
        ]));
        const stored = await Promise.all(routes.map(async (r) => (await h.client.getRoute({ id: r.id }, as(owner))).route!));
        expect(stored.map((r) => [r.rateLimit, r.cacheTtlSeconds])).toEqual(routes.map(() => [5, 99]));
      });

      it("keeps a route inactive when it is deactivated while another field changes concurrently", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const routes = await Promise.all(Array.from({ length: 5 }, () => makeRoute(owner, project.id, { rateLimit: 60 })));
        await Promise.all(routes.flatMap((r) => [
          h.client.updateRoute({ id: r.id, route: { active: false }, updateMask: { paths: ["active"] } }, as(owner)),
          h.client.updateRoute({ id: r.id, route: { rateLimit: 5 }, updateMask: { paths: ["rate_limit"] } }, as(owner)),
        ]));
        const stored = await Promise.all(routes.map(async (r) => (await h.client.getRoute({ id: r.id }, as(owner))).route!));
        expect(stored.map((r) => [r.active, r.rateLimit])).toEqual(routes.map(() => [false, 5]));
        const activeIds = (await h.client.listActiveRoutes({})).routes.map((r) => r.id);
        expect(routes.filter((r) => activeIds.includes(r.id))).toEqual([]);
      });

      it("deletes a route config", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id);
        await h.client.deleteRoute({ id: route.id }, as(owner));
        expect((await failure(h.client.getRoute({ id: route.id }, as(owner)))).code).toBe(Code.NotFound);
        expect((await h.client.listRoutes({ projectId: project.id }, as(owner))).total).toBe(0);
        expect((await failure(h.client.deleteRoute({ id: route.id }, as(owner)))).code).toBe(Code.NotFound);
      });

      it("lists only active route configs in ListActiveRoutes, with a version", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const active = await makeRoute(owner, project.id);
        const inactive = await makeRoute(owner, project.id, { active: false });
        const res = await h.client.listActiveRoutes({});
        expect(res.version).toBeGreaterThan(0n);
        expect(res.routes.every((r) => r.active)).toBe(true);
        const ids = res.routes.map((r) => r.id);
        expect(ids).toContain(active.id);
        expect(ids).not.toContain(inactive.id);
        expect(res.routes.find((r) => r.id === active.id)).toEqual(active);
      });

      it("moves the ListActiveRoutes version forward with each change to the active set", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const before = (await h.client.listActiveRoutes({})).version;
        const route = await makeRoute(owner, project.id);
        const afterCreate = (await h.client.listActiveRoutes({})).version;
        await h.client.deleteRoute({ id: route.id }, as(owner));
        const afterDelete = await h.client.listActiveRoutes({});
        expectIncreasing([afterCreate, afterDelete.version], before);
        expect(afterDelete.routes.map((r) => r.id)).not.toContain(route.id);
      });
    });

    describe("WatchRoutes", () => {
      it("opens from version 0 with a SNAPSHOT of the active route configs", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const active = await makeRoute(owner, project.id, { rateLimit: 7 });
        const inactive = await makeRoute(owner, project.id, { active: false });
        const listed = await h.client.listActiveRoutes({});
        const { snapshot } = await routeWatchFromSnapshot();
        expect(snapshot.version).toBe(listed.version);
        expect(snapshot.routes).toEqual(listed.routes);
        expect(snapshot.routes.find((r) => r.id === active.id)).toEqual(active);
        expect(snapshot.routes.map((r) => r.id)).not.toContain(inactive.id);
      });

      it("streams created, changed and activated route configs as UPSERTED after the snapshot", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const dormant = await makeRoute(owner, project.id, { active: false });
        const { rec, snapshot } = await routeWatchFromSnapshot();
        const created = await makeRoute(owner, project.id, { rateLimit: 10 });
        const changed = (await h.client.updateRoute({ id: created.id, route: { rateLimit: 20 }, updateMask: { paths: ["rate_limit"] } }, as(owner))).route!;
        const activated = (await h.client.updateRoute({ id: dormant.id, route: { active: true }, updateMask: { paths: ["active"] } }, as(owner))).route!;
        await rec.waitForCount(4);
        const events = routeEvents(rec).slice(1);
        expect(events.map((e) => [e.kind, e.route])).toEqual([
          [RouteEventKind.UPSERTED, created], [RouteEventKind.UPSERTED, changed], [RouteEventKind.UPSERTED, activated],
        ]);
        expectIncreasing(events.map((e) => e.version), snapshot.version);
      });

      it("streams deleted and deactivated route configs as DELETED", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const toDeactivate = await makeRoute(owner, project.id);
        const toDelete = await makeRoute(owner, project.id);
        const { rec, snapshot } = await routeWatchFromSnapshot();
        await h.client.updateRoute({ id: toDeactivate.id, route: { active: false }, updateMask: { paths: ["active"] } }, as(owner));
        await h.client.deleteRoute({ id: toDelete.id }, as(owner));
        await rec.waitForCount(3);
        const events = routeEvents(rec).slice(1);
        expect(events.map((e) => [e.kind, e.routeId])).toEqual([
          [RouteEventKind.DELETED, toDeactivate.id], [RouteEventKind.DELETED, toDelete.id],
        ]);
        expectIncreasing(events.map((e) => e.version), snapshot.version);
      });

      it("does not announce changes to inactive route configs", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const inactive = await makeRoute(owner, project.id, { active: false });
        const { rec } = await routeWatchFromSnapshot();
        await h.client.updateRoute({ id: inactive.id, route: { rateLimit: 3 }, updateMask: { paths: ["rate_limit"] } }, as(owner));
        await h.client.deleteRoute({ id: inactive.id }, as(owner));
        const marker = await makeRoute(owner, project.id);
        await rec.waitFor((m) => m.event?.route?.id === marker.id, { what: "the marker route" });
        expect(routeEvents(rec).slice(1).map((e) => [e.kind, e.route?.id])).toEqual([[RouteEventKind.UPSERTED, marker.id]]);
      });

      it("withdraws the active route configs of a deleted project as DELETED", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const a = await makeRoute(owner, project.id);
        const b = await makeRoute(owner, project.id);
        await makeRoute(owner, project.id, { active: false });
        const { rec } = await routeWatchFromSnapshot();
        await h.client.deleteProject({ id: project.id }, as(owner));
        const markerOwner = newUser();
        const marker = await makeRoute(markerOwner, (await makeProject(markerOwner)).id);
        await rec.waitFor((m) => m.event?.route?.id === marker.id, { what: "the marker route" });
        const events = routeEvents(rec).slice(1);
        expect(events.slice(0, -1).map((e) => e.kind)).toEqual([RouteEventKind.DELETED, RouteEventKind.DELETED]);
        expect(events.slice(0, -1).map((e) => e.routeId).sort()).toEqual([a.id, b.id].sort());
      });

      it("resumes from a version with the missed changes in order and no snapshot", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        await makeRoute(owner, project.id);
        const { rec, snapshot } = await routeWatchFromSnapshot();
        await rec.close();
        const created = await makeRoute(owner, project.id, { rateLimit: 1 });
        const changed = (await h.client.updateRoute({ id: created.id, route: { rateLimit: 2 }, updateMask: { paths: ["rate_limit"] } }, as(owner))).route!;
        await h.client.deleteRoute({ id: created.id }, as(owner));
        const resumed = watchRoutes(h.client, snapshot.version);
        await resumed.waitForCount(3);
        const marker = await makeRoute(owner, project.id);
        await resumed.waitFor((m) => m.event?.route?.id === marker.id, { what: "the marker route" });
        const events = routeEvents(resumed);
        expect(events.map((e) => [e.kind, e.route?.id ?? e.routeId])).toEqual([
          [RouteEventKind.UPSERTED, created.id], [RouteEventKind.UPSERTED, changed.id], [RouteEventKind.DELETED, created.id],
          [RouteEventKind.UPSERTED, marker.id],
        ]);
        expect(events[1]!.route).toEqual(changed);
        expectIncreasing(events.map((e) => e.version), snapshot.version);
      });

      it("delivers every one of many concurrent route changes exactly once, in version order", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const { rec, snapshot } = await routeWatchFromSnapshot();
        const created = await Promise.all(Array.from({ length: 20 }, () => makeRoute(owner, project.id)));
        await rec.waitForCount(21);
        const marker = await makeRoute(owner, project.id);
        await rec.waitFor((m) => m.event?.route?.id === marker.id, { what: "the marker route" });
        const events = routeEvents(rec).slice(1);
        expect(events.slice(0, -1).map((e) => e.route?.id).sort()).toEqual(created.map((r) => r.id).sort());
        expect(events.every((e) => e.kind === RouteEventKind.UPSERTED)).toBe(true);
        expectIncreasing(events.map((e) => e.version), snapshot.version);
      });

      it("opens with a SNAPSHOT when asked to resume from a version it never issued", async () => {
        const owner = newUser();
        await makeRoute(owner, (await makeProject(owner)).id);
        const listed = await h.client.listActiveRoutes({});
        const rec = watchRoutes(h.client, listed.version + 1_000_000n);
        const [first] = await rec.waitForCount(1);
        expect(first!.message.event).toMatchObject({ kind: RouteEventKind.SNAPSHOT, version: listed.version, routes: listed.routes });
      });

      it("follows on from a ListActiveRoutes version without a snapshot", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        await makeRoute(owner, project.id);
        const { version } = await h.client.listActiveRoutes({});
        const rec = watchRoutes(h.client, version);
        const created = await makeRoute(owner, project.id);
        const [first] = await rec.waitForCount(1);
        expect(first!.message.event).toMatchObject({ kind: RouteEventKind.UPSERTED, route: created });
        expect(first!.message.event!.version).toBeGreaterThan(version);
      });
    });

    describe("nothing half-written", () => {
      it("deletes a project's keys with it: VerifyApiKey answers valid false", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        expect((await verify(key.key)).valid).toBe(true);
        await h.client.deleteProject({ id: project.id }, as(owner));
        expect((await verify(key.key)).valid).toBe(false);
        expect((await failure(h.client.listApiKeys({ projectId: project.id }, as(owner)))).code).toBe(Code.NotFound);
        expect((await failure(h.client.revokeApiKey({ id: key.id }, as(owner)))).code).toBe(Code.NotFound);
      });

      it("deletes a project's route configs with it: GetRoute NOT_FOUND and gone from ListActiveRoutes", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id);
        await h.client.deleteProject({ id: project.id }, as(owner));
        expect((await failure(h.client.getRoute({ id: route.id }, as(owner)))).code).toBe(Code.NotFound);
        expect((await h.client.listActiveRoutes({})).routes.map((r) => r.id)).not.toContain(route.id);
      });

      it("leaves no route and no route event behind a CreateRoute with invalid fields", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        await makeRoute(owner, project.id);
        const before = await h.client.listActiveRoutes({});
        await failure(makeRoute(owner, project.id, { path: "/api/{", service: "billing" }));
        expect((await h.client.listRoutes({ projectId: project.id }, as(owner))).total).toBe(1);
        expect((await h.client.listActiveRoutes({})).version).toBe(before.version);
      });

      it("leaves no second route and no route event behind a duplicate CreateRoute", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const route = await makeRoute(owner, project.id);
        const before = await h.client.listActiveRoutes({});
        expect((await failure(makeRoute(owner, project.id, { path: route.path, rateLimit: 9 }))).code).toBe(Code.AlreadyExists);
        expect((await h.client.listRoutes({ projectId: project.id }, as(owner))).routes).toEqual([route]);
        expect((await h.client.listActiveRoutes({})).version).toBe(before.version);
      });

      it("leaves both route configs and the route version unchanged when an update collides with another", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const one = await makeRoute(owner, project.id);
        const two = await makeRoute(owner, project.id);
        const before = await h.client.listActiveRoutes({});
        const f = await failure(h.client.updateRoute({ id: two.id, route: { path: one.path }, updateMask: { paths: ["path"] } }, as(owner)));
        expect(f.code).toBe(Code.AlreadyExists);
        expect((await h.client.listRoutes({ projectId: project.id }, as(owner))).routes).toEqual([one, two]);
        expect((await h.client.listActiveRoutes({})).version).toBe(before.version);
      });

      it("appends no route event for an UpdateRoute that fails because the route was deleted concurrently", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        const routes = await Promise.all(Array.from({ length: 5 }, () => makeRoute(owner, project.id)));
        const { rec } = await routeWatchFromSnapshot();
        const outcomes = await Promise.all(routes.map(async (r) => {
          const [, update] = await Promise.allSettled([
            h.client.deleteRoute({ id: r.id }, as(owner)),
            h.client.updateRoute({ id: r.id, route: { rateLimit: 5 }, updateMask: { paths: ["rate_limit"] } }, as(owner)),
          ]);
          return update.status === "fulfilled";
        }));
        const marker = await makeRoute(owner, project.id);
        await rec.waitFor((m) => m.event?.route?.id === marker.id, { what: "the marker route" });
        const kindsOf = (id: string) => routeEvents(rec).filter((e) => (e.route?.id ?? e.routeId) === id).map((e) => e.kind);
        // Serially, an update either committed before the deletion (UPSERTED then DELETED) or failed and left nothing.
        expect(routes.map((r) => kindsOf(r.id))).toEqual(outcomes.map((updated) => (updated
          ? [RouteEventKind.UPSERTED, RouteEventKind.DELETED]
          : [RouteEventKind.DELETED])));
      });

      it("leaves the project count unchanged after a duplicate CreateProject", async () => {
        const owner = newUser();
        const project = await makeProject(owner, { name: "Only" });
        await failure(makeProject(owner, { name: "Only", description: "second" }));
        const { projects, total } = await h.client.listProjects({}, as(owner));
        expect(total).toBe(1);
        expect(projects).toEqual([project]);
      });

      it("stores no key when CreateApiKey is refused", async () => {
        const owner = newUser();
        const project = await makeProject(owner);
        await failure(makeKey(owner, project.id, { name: "" }));
        await failure(makeKey(owner, project.id, { expiresAt: new Date(Date.now() - 1_000) }));
        expect((await h.client.listApiKeys({ projectId: project.id }, as(owner))).total).toBe(0);
      });
    });

    // Only PostgreSQL is shared between processes; an embedded PGlite belongs to one instance.
    if (databaseUrl() !== undefined) describe("replicas", () => {
      it("delivers a revocation made through one replica to a watcher on another within one second", async () => {
        const replica = await h.startReplica();
        onTestFinished(() => replica.stop());
        const owner = newUser();
        const project = await makeProject(owner);
        const key = await makeKey(owner, project.id);
        const rec = watchKeys(replica.client);
        await primeKeyWatch(rec, h.client);
        const revokedAt = performance.now();
        await h.client.revokeApiKey({ id: key.id }, as(owner));
        const seen = await rec.waitFor((m) => m.event?.keyId === key.id, { timeoutMs: 3_000, what: "the revocation" });
        expect(seen.at - revokedAt).toBeLessThan(1_000);
        expect(seen.message.event).toMatchObject({ kind: KeyEventKind.REVOKED, keyHash: sha256(key.key) });
        expect((await verify(key.key, replica.client)).valid).toBe(false);
      });

      it("delivers a route change made through one replica to a WatchRoutes watcher on another", async () => {
        const replica = await h.startReplica();
        onTestFinished(() => replica.stop());
        const owner = newUser();
        const project = await makeProject(owner);
        const { rec, snapshot } = await routeWatchFromSnapshot(replica.client);
        const route = await makeRoute(owner, project.id);
        const seen = await rec.waitFor((m) => m.event?.route?.id === route.id, { timeoutMs: 3_000, what: "the new route" });
        expect(seen.message.event).toMatchObject({ kind: RouteEventKind.UPSERTED, route });
        expect(seen.message.event!.version).toBeGreaterThan(snapshot.version);
      });

      it("resumes a key watch on another replica without loss after its replica shuts down (UNAVAILABLE)", async () => {
        const replica = await h.startReplica();
        onTestFinished(() => replica.stop());
        const owner = newUser();
        const project = await makeProject(owner);
        const keys = [await makeKey(owner, project.id), await makeKey(owner, project.id), await makeKey(owner, project.id)];
        const rec = watchKeys(replica.client);
        await primeKeyWatch(rec, h.client);
        await h.client.revokeApiKey({ id: keys[0]!.id }, as(owner));
        await rec.waitFor((m) => m.event?.keyId === keys[0]!.id, { what: "the first revocation" });
        const lastSeen = keyEvents(rec).at(-1)!.version;
        await replica.stop();
        expect(ConnectError.from(await rec.ended()).code).toBe(Code.Unavailable);

        for (const k of keys.slice(1)) await h.client.revokeApiKey({ id: k.id }, as(owner));
        const resumed = watchKeys(h.client, lastSeen);
        await resumed.waitFor((m) => m.event?.keyId === keys[2]!.id, { what: "the last missed revocation" });
        expect(keyEvents(resumed).map((e) => e.keyId)).toEqual([keys[1]!.id, keys[2]!.id]);
        expectIncreasing(keyEvents(resumed).map((e) => e.version), lastSeen);
      });
    });
  });
}

projectSuite("embedded PGlite", () => undefined);
describeWithServer("TEST_DATABASE_URL", "project service over gRPC with PostgreSQL", (url) => {
  projectSuite("PostgreSQL", () => url);
});

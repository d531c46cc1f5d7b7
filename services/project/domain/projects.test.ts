import { createHash, randomUUID } from "node:crypto";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fieldViolationsOf } from "../../../lib/errors.js";
import { createNotifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore, type RelationalStore } from "../../../lib/stores/postgres.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import type { ApiKeyRecord, ProjectRecord, ProjectStore, RouteRecord } from "../storage/port.js";
import { createPostgresProjectStore } from "../storage/postgres.js";
import { createProjectsDomain } from "./projects.js";

// Fake clock: only the tests move it, and only forward.
let t = new Date("2026-01-01T00:00:00Z");
const now = () => t;
const advance = (seconds: number) => {
  t = new Date(t.getTime() + seconds * 1_000);
};

let db: RelationalStore;
let store: ProjectStore;
let projects: ReturnType<typeof createProjectsDomain>;

beforeAll(async () => {
  db = await openRelationalStore({});
  await migrate(db.pool, "project", await loadMigrations(join(import.meta.dirname, "..", "storage", "migrations")));
  store = createPostgresProjectStore(db.pool);
  projects = createProjectsDomain({ store, now, newId: randomUUID, events: createNotifier() });
});
afterAll(async () => {
  await db?.close();
});

const newUser = (): Caller => ({ userId: `user-${randomUUID()}`, roles: ["user"], isAdmin: false });
const newAdmin = (): Caller => ({ userId: `admin-${randomUUID()}`, roles: ["user", "admin"], isAdmin: true });
const fieldsOf = (err: unknown) => fieldViolationsOf(err).map((v) => v.field);
const idsOf = (page: { items: readonly { id: string }[] }) => page.items.map((p) => p.id);
const list = (caller: Caller, q: Partial<{ page: number; limit: number; sort: string; order: string }> = {}) =>
  projects.list(caller, { page: 0, limit: 0, sort: "", order: "", ...q });

/** Creates a project of `owner` (a new user when omitted) with a unique name, one second after the previous one. */
async function created(owner: Caller = newUser(), input: Partial<{ name: string; description: string }> = {}) {
  advance(1);
  return projects.create(owner, { name: `project ${randomUUID()}`, description: "", ...input });
}

function makeKey(projectId: string): ApiKeyRecord {
  return {
    id: randomUUID(), projectId, keyHash: createHash("sha256").update(randomUUID()).digest("hex"), prefix: "gw_0aB1cD2e",
    name: "ci", createdAt: now(),
  };
}

function makeRoute(projectId: string, overrides: Partial<RouteRecord> = {}): RouteRecord {
  return {
    id: randomUUID(), projectId, method: "GET", path: `/api/v1/things/${randomUUID()}`, service: "project", active: true,
    createdAt: now(), updatedAt: now(), ...overrides,
  };
}

describe("create", () => {
  it("stores a project owned by the caller with the name trimmed, created now", async () => {
    const owner = newUser();
    const project = await projects.create(owner, { name: "  Apollo  ", description: "to the moon" });
    const expected: ProjectRecord = {
      id: project.id, ownerId: owner.userId, name: "Apollo", description: "to the moon", createdAt: now(), updatedAt: now(),
    };
    expect(project).toEqual(expected);
    expect(await store.getProject(project.id)).toEqual(expected);
  });

  it("accepts a name of 100 characters and a description of 1000", async () => {
    const project = await created(newUser(), { name: "n".repeat(100), description: "d".repeat(1_000) });
    expect([project.name.length, project.description.length]).toEqual([100, 1_000]);
  });

  const invalid = [
    { field: "name", input: { name: "   ", description: "" } },
    { field: "name", input: { name: "n".repeat(101), description: "" } },
    { field: "description", input: { name: "Apollo", description: "d".repeat(1_001) } },
  ];

  it.each(invalid)("rejects an invalid $field with InvalidArgument naming it", async ({ field, input }) => {
    const err = await rejectionOf(projects.create(newUser(), input));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual([field]);
  });

  it("writes nothing when the input is invalid", async () => {
    const owner = newUser();
    await rejectionOf(projects.create(owner, { name: "", description: "" }));
    expect((await list(owner)).total).toBe(0);
  });

  it("rejects a name the owner already uses, once trimmed, with AlreadyExists", async () => {
    const owner = newUser();
    await projects.create(owner, { name: "Apollo", description: "" });
    const err = await rejectionOf(projects.create(owner, { name: " Apollo ", description: "" }));
    expect([err.code, err.rawMessage]).toEqual([Code.AlreadyExists, "a project with this name already exists"]);
  });

  it("accepts a name another user already uses", async () => {
    const taken = await projects.create(newUser(), { name: "Gemini", description: "" });
    const mine = await projects.create(newUser(), { name: "Gemini", description: "" });
    expect(mine.id).not.toBe(taken.id);
  });
});

describe("list", () => {
  const invalid = [
    { field: "page", q: { page: -1 } },
    { field: "limit", q: { limit: 101 } },
    { field: "limit", q: { limit: -1 } },
    { field: "sort", q: { sort: "bogus" } },
    { field: "order", q: { order: "sideways" } },
  ];

  it.each(invalid)("rejects an invalid $field ($q) with InvalidArgument naming it", async ({ field, q }) => {
    const err = await rejectionOf(list(newUser(), q));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual([field]);
  });

  it("defaults page 0 to 1 and limit 0 to 20", async () => {
    const result = await list(newUser(), { page: 0, limit: 0 });
    expect([result.page, result.limit]).toEqual([1, 20]);
  });

  it("lists newest first by default", async () => {
    const owner = newUser();
    const first = await created(owner);
    const second = await created(owner);
    expect(idsOf(await list(owner))).toEqual([second.id, first.id]);
  });

  it("sorts by name ascending", async () => {
    const owner = newUser();
    const b = await created(owner, { name: "b" });
    const c = await created(owner, { name: "c" });
    const a = await created(owner, { name: "a" });
    expect(idsOf(await list(owner, { sort: "name", order: "asc" }))).toEqual([a.id, b.id, c.id]);
  });

  it("sorts by updatedAt, most recently updated first", async () => {
    const owner = newUser();
    const older = await created(owner);
    const newer = await created(owner);
    advance(1);
    await projects.update(owner, older.id, { name: "touched", description: "" }, ["name"]);
    expect(idsOf(await list(owner, { sort: "updatedAt", order: "desc" }))).toEqual([older.id, newer.id]);
  });

  it("answers the requested page with the total of all pages", async () => {
    const owner = newUser();
    const [p1, p2, p3] = [await created(owner), await created(owner), await created(owner)];
    const second = await list(owner, { page: 2, limit: 2, sort: "createdAt", order: "asc" });
    expect(second).toEqual({ items: [p3], total: 3, page: 2, limit: 2 });
    expect(idsOf(await list(owner, { page: 1, limit: 2, sort: "createdAt", order: "asc" }))).toEqual([p1.id, p2.id]);
  });

  it("shows a user only their own projects", async () => {
    const owner = newUser();
    const mine = await created(owner);
    await created();
    expect(await list(owner)).toMatchObject({ items: [mine], total: 1 });
  });

  it("shows an admin every user's projects", async () => {
    const [a, b] = [await created(), await created()];
    const result = await list(newAdmin(), { limit: 100 });
    expect(idsOf(result).slice(0, 2)).toEqual([b.id, a.id]);
    expect(result.total).toBe((await store.listProjects({ sort: "name", order: "asc", offset: 0, limit: 1 })).total);
  });
});

describe("access", () => {
  it("answers the caller's own project", async () => {
    const owner = newUser();
    const project = await created(owner);
    expect(await projects.get(owner, project.id)).toEqual(project);
  });

  it("answers any user's project to an admin", async () => {
    const project = await created();
    expect(await projects.get(newAdmin(), project.id)).toEqual(project);
  });

  const operations = {
    get: (caller: Caller, id: string) => projects.get(caller, id),
    replace: (caller: Caller, id: string) => projects.replace(caller, id, { name: "taken over", description: "" }),
    update: (caller: Caller, id: string) => projects.update(caller, id, { name: "taken over", description: "" }, ["name"]),
    delete: (caller: Caller, id: string) => projects.delete(caller, id),
  };
  const names = Object.keys(operations) as (keyof typeof operations)[];

  it.each(names)("answers %s of another user's project exactly like a missing one (NotFound)", async (op) => {
    const project = await created();
    const intruder = newUser();
    const denied = await rejectionOf(operations[op](intruder, project.id));
    const missing = await rejectionOf(operations[op](intruder, randomUUID()));
    expect([denied.code, denied.rawMessage]).toEqual([Code.NotFound, missing.rawMessage]);
  });

  it.each(names)("leaves another user's project unchanged when they try to %s it", async (op) => {
    const project = await created();
    await rejectionOf(operations[op](newUser(), project.id));
    expect(await store.getProject(project.id)).toEqual(project);
  });

  it.each(names)("answers %s of a non-UUID id with NotFound", async (op) => {
    expect((await rejectionOf(operations[op](newUser(), "not-a-uuid"))).code).toBe(Code.NotFound);
  });
});

describe("replace", () => {
  it("sets every field, clearing a description left empty, and sets updatedAt", async () => {
    const owner = newUser();
    const project = await created(owner, { description: "old" });
    advance(60);
    const replaced = await projects.replace(owner, project.id, { name: " Renamed ", description: "" });
    const expected = { ...project, name: "Renamed", description: "", updatedAt: now() };
    expect(replaced).toEqual(expected);
    expect(await store.getProject(project.id)).toEqual(expected);
  });

  it("rejects an invalid name with InvalidArgument naming it, changing nothing", async () => {
    const owner = newUser();
    const project = await created(owner);
    const err = await rejectionOf(projects.replace(owner, project.id, { name: " ", description: "" }));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["name"]]);
    expect(await store.getProject(project.id)).toEqual(project);
  });

  it("rejects the name of another of the owner's projects with AlreadyExists", async () => {
    const owner = newUser();
    const taken = await created(owner);
    const project = await created(owner);
    const err = await rejectionOf(projects.replace(owner, project.id, { name: taken.name, description: "" }));
    expect([err.code, err.rawMessage]).toEqual([Code.AlreadyExists, "a project with this name already exists"]);
  });
});

describe("update", () => {
  it("changes only the name when the mask names only name", async () => {
    const owner = newUser();
    const project = await created(owner, { description: "keep me" });
    advance(60);
    const updated = await projects.update(owner, project.id, { name: "Renamed", description: "ignored" }, ["name"]);
    expect(updated).toEqual({ ...project, name: "Renamed", updatedAt: now() });
    expect(await store.getProject(project.id)).toEqual(updated);
  });

  it("clears the description when the mask names it and it is empty", async () => {
    const owner = newUser();
    const project = await created(owner, { description: "old" });
    const updated = await projects.update(owner, project.id, { name: "", description: "" }, ["description"]);
    expect([updated.name, updated.description]).toEqual([project.name, ""]);
  });

  it("rejects an unknown mask path with InvalidArgument naming update_mask, changing nothing", async () => {
    const owner = newUser();
    const project = await created(owner);
    const err = await rejectionOf(projects.update(owner, project.id, { name: "Renamed", description: "" }, ["name", "owner_id"]));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["update_mask"]]);
    expect(await store.getProject(project.id)).toEqual(project);
  });

  it("changes only the fields sent non-empty when there is no mask", async () => {
    const owner = newUser();
    const project = await created(owner, { description: "old" });
    const updated = await projects.update(owner, project.id, { name: "", description: "new" }, undefined);
    expect([updated.name, updated.description]).toEqual([project.name, "new"]);
  });

  it("changes nothing, not even updatedAt, when there is no mask and nothing is sent", async () => {
    const owner = newUser();
    const project = await created(owner, { description: "old" });
    advance(60);
    expect(await projects.update(owner, project.id, { name: "", description: "" }, [])).toEqual(project);
    expect(await store.getProject(project.id)).toEqual(project);
  });

  it("names project.name when the masked name is invalid", async () => {
    const owner = newUser();
    const project = await created(owner);
    const err = await rejectionOf(projects.update(owner, project.id, { name: "  ", description: "" }, ["name"]));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["project.name"]]);
  });

  // UpdateProjectRequest carries the values in `project`, so the path is project.description.
  it("names project.description when the masked description is too long", async () => {
    const owner = newUser();
    const project = await created(owner);
    const err = await rejectionOf(projects.update(owner, project.id, { name: "", description: "d".repeat(1_001) }, ["description"]));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["project.description"]]);
  });

  it("rejects the name of another of the owner's projects with AlreadyExists", async () => {
    const owner = newUser();
    const taken = await created(owner);
    const project = await created(owner);
    const err = await rejectionOf(projects.update(owner, project.id, { name: taken.name, description: "" }, ["name"]));
    expect([err.code, err.rawMessage]).toEqual([Code.AlreadyExists, "a project with this name already exists"]);
    expect(await store.getProject(project.id)).toEqual(project);
  });
});

describe("delete", () => {
  /** A project of `owner` with a live key, a revoked key, an active and an inactive route config. */
  async function furnished(owner: Caller) {
    const project = await created(owner);
    const live = makeKey(project.id);
    const revoked = makeKey(project.id);
    const active = makeRoute(project.id);
    const inactive = makeRoute(project.id, { active: false });
    for (const k of [live, revoked]) await store.insertApiKey(k);
    for (const r of [active, inactive]) await store.insertRoute(r);
    await store.revokeApiKey(revoked.id, now());
    return { project, live, revoked, active, inactive };
  }

  it("forgets the project", async () => {
    const owner = newUser();
    const project = await created(owner);
    await projects.delete(owner, project.id);
    expect((await rejectionOf(projects.get(owner, project.id))).code).toBe(Code.NotFound);
  });

  it("removes the project's API keys and route configs", async () => {
    const owner = newUser();
    const { project, live, revoked, active, inactive } = await furnished(owner);
    await projects.delete(owner, project.id);
    expect(await Promise.all([store.getApiKey(live.id), store.getApiKey(revoked.id), store.getRoute(active.id), store.getRoute(inactive.id)]))
      .toEqual([undefined, undefined, undefined, undefined]);
  });

  it("appends a PROJECT_DELETED key event for each unrevoked key only", async () => {
    const owner = newUser();
    const { project, live } = await furnished(owner);
    const before = await store.lastKeyEventVersion();
    advance(5);
    await projects.delete(owner, project.id);
    const appended = (await store.listKeyEvents(before, 1_000)).map(({ version: _, ...e }) => e);
    expect(appended).toEqual([{ kind: "project_deleted", keyId: live.id, keyHash: live.keyHash, projectId: project.id, occurredAt: now() }]);
  });

  it("appends a DELETED route event for each active route config only", async () => {
    const owner = newUser();
    const { project, active } = await furnished(owner);
    const before = (await store.routeEventRange()).last;
    advance(5);
    await projects.delete(owner, project.id);
    const appended = (await store.listRouteEvents(before, 1_000)).map(({ version: _, ...e }) => e);
    expect(appended).toEqual([{ kind: "deleted", routeId: active.id, occurredAt: now() }]);
  });

  it("lets an admin delete another user's project", async () => {
    const project = await created();
    await projects.delete(newAdmin(), project.id);
    expect(await store.getProject(project.id)).toBeUndefined();
  });
});

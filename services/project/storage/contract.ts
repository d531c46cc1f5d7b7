import { createHash, randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiKeyRecord, KeyEventRecord, ProjectRecord, ProjectSort, ProjectStore, RouteEventRecord, RouteRecord } from "./port.js";
import { rejectionOf } from "../../../test/support/rejection.js";

/** A fresh, migrated, empty store and how to dispose of it. */
export interface OpenedProjectStore {
  readonly store: ProjectStore;
  close(): Promise<void>;
}

// Every instant is fixed: the contract never reads the wall clock. Events of
// every test occur at T0 or later, except those the pruning tests make old.
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const DAY = 86_400;
/** The instant `seconds` after T0 (before it when negative). */
const at = (seconds: number): Date => new Date(T0 + seconds * 1_000);
const FAR = 100_000;

const randomHash = (): string => createHash("sha256").update(randomUUID()).digest("hex");
const byVersion = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const sortedIds = (ids: readonly string[]): string[] => [...ids].sort();

function makeProject(overrides: Partial<ProjectRecord> = {}): ProjectRecord {
  const id = randomUUID();
  return { id, ownerId: `user-${randomUUID()}`, name: `project ${id}`, description: "", createdAt: at(0), updatedAt: at(0), ...overrides };
}

function makeApiKey(projectId: string, overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: randomUUID(), projectId, keyHash: randomHash(), prefix: "gw_0aB1cD2e", name: "ci key", expiresAt: undefined, createdAt: at(0),
    lastUsedAt: undefined, revokedAt: undefined, ...overrides,
  };
}

function makeRoute(projectId: string, overrides: Partial<RouteRecord> = {}): RouteRecord {
  return {
    id: randomUUID(), projectId, method: "GET", path: `/api/v1/things/${randomUUID()}`, service: "project", rateLimit: 60,
    cacheTtlSeconds: 30, active: true, createdAt: at(0), updatedAt: at(0), ...overrides,
  };
}

function makeKeyEvent(overrides: Partial<Omit<KeyEventRecord, "version">> = {}): Omit<KeyEventRecord, "version"> {
  return { kind: "revoked", keyId: randomUUID(), keyHash: randomHash(), projectId: randomUUID(), occurredAt: at(0), ...overrides };
}

const deletedEvent = (occurredAt = at(0)) => ({ kind: "deleted" as const, routeId: randomUUID(), occurredAt });

/**
 * The ProjectStore contract (services/project/storage/port.ts), run against
 * every adapter. `open` is called once per suite (and once more for the checks
 * that need an empty store); tests stay independent of each other through
 * unique ids, owners, hashes and paths, and read only their own rows, or
 * versions after the ones they appended.
 */
export function projectStoreContract(name: string, open: () => Promise<OpenedProjectStore>): void {
  describe(`ProjectStore contract (${name})`, () => {
    let opened: OpenedProjectStore | undefined;
    let store: ProjectStore;
    beforeAll(async () => {
      opened = await open();
      store = opened.store;
    });
    afterAll(async () => {
      await opened?.close();
    });

    const seedProject = async (overrides: Partial<ProjectRecord> = {}) => {
      const project = makeProject(overrides);
      await store.insertProject(project);
      return project;
    };
    const seedKey = async (projectId?: string, overrides: Partial<ApiKeyRecord> = {}) => {
      const key = makeApiKey(projectId ?? (await seedProject()).id, overrides);
      await store.insertApiKey(key);
      return key;
    };
    const seedRoute = async (projectId?: string, overrides: Partial<RouteRecord> = {}) => {
      const route = makeRoute(projectId ?? (await seedProject()).id, overrides);
      await store.insertRoute(route);
      return route;
    };
    /** Appends key events in one transaction; answers their versions. */
    const appendKeyEvents = (events: readonly Omit<KeyEventRecord, "version">[]) => store.transaction(async (tx) => {
      const versions: bigint[] = [];
      for (const e of events) versions.push(await tx.appendKeyEvent(e));
      return versions;
    });
    /** Appends one route event in its own transaction; answers its version. */
    const appendRouteEvent = (e: Parameters<ProjectStore["appendRouteEvent"]>[0]) => store.transaction((tx) => tx.appendRouteEvent(e));
    const listAll = (ownerId: string | undefined, sort: ProjectSort = "created_at", order: "asc" | "desc" = "asc") =>
      store.listProjects({ ownerId, sort, order, offset: 0, limit: FAR });
    const idsOf = (page: { items: readonly { id: string }[] }) => page.items.map((p) => p.id);
    /**
     * Runs `lock` in a transaction, then starts `change` outside it and keeps
     * the transaction open for up to 200 more statements, or until the change
     * finished; answers the order in which the commit and the change finished.
     * A held lock makes the change wait for the commit.
     */
    const raceAgainstLock = async (lock: (tx: ProjectStore) => Promise<unknown>, change: () => Promise<unknown>) => {
      // Open spare pool connections first, so the change need not wait for one to connect.
      await Promise.all(Array.from({ length: 3 }, () => store.getProject(randomUUID())));
      const finished: string[] = [];
      let changing: Promise<unknown> = Promise.resolve();
      await store.transaction(async (tx) => {
        await lock(tx);
        changing = change().then(() => finished.push("change"));
        for (let i = 0; i < 200 && finished.length === 0; i++) await tx.getProject(randomUUID());
        finished.push("commit");
      });
      await changing;
      return finished;
    };

    describe("projects", () => {
      it("round-trips every field of an inserted project", async () => {
        const project = await seedProject({ description: "the first one", createdAt: at(1), updatedAt: at(2) });
        expect(await store.getProject(project.id)).toEqual(project);
      });

      it("answers undefined for an unknown project id", async () => {
        expect(await store.getProject(randomUUID())).toBeUndefined();
      });

      it("rejects a second project of the same name for one owner with AlreadyExists", async () => {
        const project = await seedProject();
        const err = await rejectionOf(store.insertProject(makeProject({ ownerId: project.ownerId, name: project.name })));
        expect(err.code).toBe(Code.AlreadyExists);
      });

      it("accepts a name another owner already uses", async () => {
        const project = await seedProject();
        const other = await seedProject({ name: project.name });
        expect(await store.getProject(other.id)).toEqual(other);
      });

      it("rejects a duplicate id with AlreadyExists", async () => {
        const project = await seedProject();
        const err = await rejectionOf(store.insertProject(makeProject({ id: project.id })));
        expect(err.code).toBe(Code.AlreadyExists);
      });
    });

    describe("listing projects", () => {
      it("lists only the given owner's projects, with their count as total", async () => {
        const mine = await seedProject();
        const second = await seedProject({ ownerId: mine.ownerId, createdAt: at(1) });
        await seedProject();
        const page = await listAll(mine.ownerId);
        expect([idsOf(page), page.total]).toEqual([[mine.id, second.id], 2]);
      });

      it("lists every owner's projects when no owner is given", async () => {
        const a = await seedProject();
        const b = await seedProject();
        const page = await listAll(undefined);
        expect(idsOf(page)).toEqual(expect.arrayContaining([a.id, b.id]));
        expect(page.total).toBe(page.items.length);
      });

      // Insertion order (4, 1, 3, 2) matches none of the six expected orders.
      const sortCases: { sort: ProjectSort; order: "asc" | "desc"; expected: number[] }[] = [
        { sort: "created_at", order: "asc", expected: [1, 2, 3, 4] },
        { sort: "created_at", order: "desc", expected: [4, 3, 2, 1] },
        { sort: "updated_at", order: "asc", expected: [2, 1, 4, 3] },
        { sort: "updated_at", order: "desc", expected: [3, 4, 1, 2] },
        { sort: "name", order: "asc", expected: [3, 1, 4, 2] },
        { sort: "name", order: "desc", expected: [2, 4, 1, 3] },
      ];

      it.each(sortCases)("sorts by $sort $order", async ({ sort, order, expected }) => {
        const ownerId = `user-${randomUUID()}`;
        const fields: Record<number, Partial<ProjectRecord>> = {
          1: { name: "b", createdAt: at(10), updatedAt: at(20) },
          2: { name: "d", createdAt: at(20), updatedAt: at(10) },
          3: { name: "a", createdAt: at(30), updatedAt: at(40) },
          4: { name: "c", createdAt: at(40), updatedAt: at(30) },
        };
        const ids: Record<number, string> = {};
        for (const n of [4, 1, 3, 2]) ids[n] = (await seedProject({ ownerId, ...fields[n] })).id;
        expect(idsOf(await listAll(ownerId, sort, order))).toEqual(expected.map((n) => ids[n]));
      });

      it("orders projects that tie on the sort column by id", async () => {
        const ownerId = `user-${randomUUID()}`;
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push((await seedProject({ ownerId })).id);
        expect(idsOf(await listAll(ownerId, "created_at", "asc"))).toEqual(sortedIds(ids));
        expect([sortedIds(ids), sortedIds(ids).reverse()]).toContainEqual(idsOf(await listAll(ownerId, "created_at", "desc")));
      });

      it("pages through ties without repeating or skipping a project", async () => {
        const ownerId = `user-${randomUUID()}`;
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) ids.push((await seedProject({ ownerId, updatedAt: at(5) })).id);
        const paged: string[] = [];
        for (let offset = 0; offset < 4; offset++) {
          paged.push(...idsOf(await store.listProjects({ ownerId, sort: "updated_at", order: "desc", offset, limit: 1 })));
        }
        expect(sortedIds(paged)).toEqual(sortedIds(ids));
        expect(paged).toEqual(idsOf(await listAll(ownerId, "updated_at", "desc")));
      });

      it("answers the page at offset and limit with the total of all pages", async () => {
        const ownerId = `user-${randomUUID()}`;
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push((await seedProject({ ownerId, createdAt: at(i) })).id);
        const page = await store.listProjects({ ownerId, sort: "created_at", order: "asc", offset: 1, limit: 2 });
        expect([idsOf(page), page.total]).toEqual([ids.slice(1, 3), 5]);
      });

      it("answers an empty page past the end, still with the total", async () => {
        const project = await seedProject();
        const page = await store.listProjects({ ownerId: project.ownerId, sort: "name", order: "asc", offset: 5, limit: 5 });
        expect(page).toEqual({ items: [], total: 1 });
      });
    });

    describe("updating projects", () => {
      it("changes only the name when the patch holds only a name, and sets updatedAt", async () => {
        const project = await seedProject({ description: "keep me" });
        const expected = { ...project, name: `renamed ${randomUUID()}`, updatedAt: at(60) };
        expect(await store.updateProject(project.id, { name: expected.name }, at(60))).toEqual(expected);
        expect(await store.getProject(project.id)).toEqual(expected);
      });

      it("changes only the description when the patch holds only a description", async () => {
        const project = await seedProject({ description: "old" });
        expect(await store.updateProject(project.id, { description: "new" }, at(60)))
          .toEqual({ ...project, description: "new", updatedAt: at(60) });
      });

      it("sets an empty description", async () => {
        const project = await seedProject({ description: "old" });
        await store.updateProject(project.id, { description: "" }, at(60));
        expect((await store.getProject(project.id))?.description).toBe("");
      });

      it("answers undefined when updating an unknown project", async () => {
        expect(await store.updateProject(randomUUID(), { name: "x" }, at(60))).toBeUndefined();
      });

      it("rejects a rename onto another project of the owner with AlreadyExists and keeps the name", async () => {
        const taken = await seedProject();
        const project = await seedProject({ ownerId: taken.ownerId });
        const err = await rejectionOf(store.updateProject(project.id, { name: taken.name }, at(60)));
        expect(err.code).toBe(Code.AlreadyExists);
        expect(await store.getProject(project.id)).toEqual(project);
      });
    });

    describe("locking projects", () => {
      it("answers the project inside a transaction", async () => {
        const project = await seedProject({ description: "locked" });
        expect(await store.transaction((tx) => tx.lockProject(project.id))).toEqual(project);
      });

      it("answers undefined for an unknown project", async () => {
        expect(await store.transaction((tx) => tx.lockProject(randomUUID()))).toBeUndefined();
      });

      it("holds a concurrent change of the project until the transaction commits", async () => {
        const project = await seedProject();
        const order = await raceAgainstLock((tx) => tx.lockProject(project.id),
          () => store.updateProject(project.id, { description: "changed" }, at(60)));
        expect(order).toEqual(["commit", "change"]);
        expect((await store.getProject(project.id))?.description).toBe("changed");
      });
    });

    describe("deleting projects", () => {
      it("answers true and forgets the project", async () => {
        const project = await seedProject();
        expect(await store.deleteProject(project.id)).toBe(true);
        expect(await store.getProject(project.id)).toBeUndefined();
      });

      it("deletes the project's API keys and route configs with it", async () => {
        const project = await seedProject();
        const key = await seedKey(project.id);
        const route = await seedRoute(project.id);
        await store.deleteProject(project.id);
        expect([await store.getApiKey(key.id), await store.getRoute(route.id), await store.findApiKeyByHash(key.keyHash)])
          .toEqual([undefined, undefined, undefined]);
      });

      it("leaves other projects' API keys and route configs alone", async () => {
        const key = await seedKey();
        const route = await seedRoute();
        await store.deleteProject((await seedProject()).id);
        expect([await store.getApiKey(key.id), await store.getRoute(route.id)]).toEqual([key, route]);
      });

      it("answers false when the project does not exist", async () => {
        expect(await store.deleteProject(randomUUID())).toBe(false);
      });
    });

    describe("API keys", () => {
      it("round-trips every field of an inserted key with an expiry", async () => {
        const key = await seedKey(undefined, { expiresAt: at(DAY), createdAt: at(5) });
        expect(await store.getApiKey(key.id)).toEqual(key);
      });

      it("round-trips a key without expiry, never used and not revoked", async () => {
        const key = await seedKey();
        const stored = await store.getApiKey(key.id);
        expect(stored).toEqual(key);
        expect([stored?.expiresAt, stored?.lastUsedAt, stored?.revokedAt]).toEqual([undefined, undefined, undefined]);
      });

      it("answers undefined for an unknown key id", async () => {
        expect(await store.getApiKey(randomUUID())).toBeUndefined();
      });

      // The API keys domain relies on this to answer NotFound for a project deleted meanwhile.
      it("rejects a key of an unknown project with FailedPrecondition", async () => {
        const err = await rejectionOf(store.insertApiKey(makeApiKey(randomUUID())));
        expect(err.code).toBe(Code.FailedPrecondition);
      });

      it("rejects a duplicate key hash with AlreadyExists", async () => {
        const key = await seedKey();
        const err = await rejectionOf(store.insertApiKey(makeApiKey(key.projectId, { keyHash: key.keyHash })));
        expect(err.code).toBe(Code.AlreadyExists);
      });

      it("lists a project's keys newest first, with their count as total", async () => {
        const project = await seedProject();
        const older = await seedKey(project.id, { createdAt: at(10) });
        const newest = await seedKey(project.id, { createdAt: at(30) });
        const middle = await seedKey(project.id, { createdAt: at(20) });
        await seedKey();
        expect(await store.listApiKeys(project.id, 0, FAR)).toEqual({ items: [newest, middle, older], total: 3 });
      });

      it("answers the page of keys at offset and limit with the total of all pages", async () => {
        const project = await seedProject();
        const keys: ApiKeyRecord[] = [];
        for (let i = 0; i < 4; i++) keys.push(await seedKey(project.id, { createdAt: at(i) }));
        expect(await store.listApiKeys(project.id, 1, 2)).toEqual({ items: [keys[2], keys[1]], total: 4 });
      });

      it("answers a project's keys that are not revoked, and no other project's", async () => {
        const project = await seedProject();
        const live = await seedKey(project.id);
        const revoked = await seedKey(project.id);
        await store.revokeApiKey(revoked.id, at(60));
        await seedKey();
        expect(await store.unrevokedKeysOfProject(project.id)).toEqual([live]);
      });

      it("revokes a key, answering it with revokedAt set and revokedNow true", async () => {
        const key = await seedKey();
        expect(await store.revokeApiKey(key.id, at(60))).toEqual({ key: { ...key, revokedAt: at(60) }, revokedNow: true });
        expect((await store.getApiKey(key.id))?.revokedAt).toEqual(at(60));
      });

      it("answers revokedNow false and keeps the first revokedAt when revoking again", async () => {
        const key = await seedKey();
        await store.revokeApiKey(key.id, at(60));
        expect(await store.revokeApiKey(key.id, at(120))).toEqual({ key: { ...key, revokedAt: at(60) }, revokedNow: false });
        expect((await store.getApiKey(key.id))?.revokedAt).toEqual(at(60));
      });

      it("answers undefined when revoking an unknown key", async () => {
        expect(await store.revokeApiKey(randomUUID(), at(60))).toBeUndefined();
      });

      it("finds a key by its hash together with its project's owner", async () => {
        const project = await seedProject();
        const key = await seedKey(project.id, { expiresAt: at(DAY) });
        expect(await store.findApiKeyByHash(key.keyHash)).toEqual({ ...key, ownerId: project.ownerId });
      });

      it("answers undefined for an unknown key hash", async () => {
        expect(await store.findApiKeyByHash(randomHash())).toBeUndefined();
      });

      it("records the last use of every key in the batch", async () => {
        const a = await seedKey();
        const b = await seedKey();
        await store.touchApiKeys(new Map([[a.id, at(60)], [b.id, at(90)]]));
        expect([(await store.getApiKey(a.id))?.lastUsedAt, (await store.getApiKey(b.id))?.lastUsedAt]).toEqual([at(60), at(90)]);
      });

      it("never moves a key's last use backwards", async () => {
        const key = await seedKey();
        await store.touchApiKeys(new Map([[key.id, at(120)]]));
        await store.touchApiKeys(new Map([[key.id, at(60)]]));
        expect((await store.getApiKey(key.id))?.lastUsedAt).toEqual(at(120));
      });

      it("moves a key's last use forwards", async () => {
        const key = await seedKey();
        await store.touchApiKeys(new Map([[key.id, at(60)]]));
        await store.touchApiKeys(new Map([[key.id, at(120)]]));
        expect((await store.getApiKey(key.id))?.lastUsedAt).toEqual(at(120));
      });

      it("leaves keys outside the batch untouched", async () => {
        const touched = await seedKey();
        const other = await seedKey();
        await store.touchApiKeys(new Map([[touched.id, at(60)], [randomUUID(), at(60)]]));
        expect(await store.getApiKey(other.id)).toEqual(other);
      });

      it("accepts an empty batch of uses", async () => {
        await expect(store.touchApiKeys(new Map())).resolves.toBeUndefined();
      });
    });

    describe("key events", () => {
      it("appends inside a transaction with strictly increasing bigint versions", async () => {
        const versions = await appendKeyEvents([makeKeyEvent(), makeKeyEvent(), makeKeyEvent()]);
        expect(versions.map((v) => typeof v)).toEqual(["bigint", "bigint", "bigint"]);
        expect(versions[0]! < versions[1]! && versions[1]! < versions[2]!).toBe(true);
      });

      it("lists an appended event with every field and its version", async () => {
        const event = makeKeyEvent({ kind: "project_deleted", occurredAt: at(42) });
        const [version] = await appendKeyEvents([event]);
        expect(await store.listKeyEvents(version! - 1n, 1)).toEqual([{ ...event, version }]);
      });

      it("lists the events after a version, oldest first", async () => {
        const events = [makeKeyEvent(), makeKeyEvent(), makeKeyEvent()];
        const versions = await appendKeyEvents(events);
        const listed = await store.listKeyEvents(versions[0]!, FAR);
        expect(listed.map((e) => [e.version, e.keyId])).toEqual([[versions[1], events[1]!.keyId], [versions[2], events[2]!.keyId]]);
      });

      it("lists at most limit events", async () => {
        const versions = await appendKeyEvents([makeKeyEvent(), makeKeyEvent(), makeKeyEvent()]);
        expect((await store.listKeyEvents(versions[0]!, 1)).map((e) => e.version)).toEqual([versions[1]]);
      });

      it("answers the newest version as the last key event version", async () => {
        const versions = await appendKeyEvents([makeKeyEvent(), makeKeyEvent()]);
        expect(await store.lastKeyEventVersion()).toBe(versions[1]);
      });

      it("refuses to append a key event outside a transaction, appending nothing", async () => {
        const before = await store.lastKeyEventVersion();
        await expect(store.appendKeyEvent(makeKeyEvent())).rejects.toThrow();
        expect(await store.lastKeyEventVersion()).toBe(before);
      });
    });

    describe("route configs", () => {
      it("round-trips every field of an inserted route config", async () => {
        const route = await seedRoute(undefined, { method: "PATCH", service: "logging", active: false, createdAt: at(1), updatedAt: at(2) });
        expect(await store.getRoute(route.id)).toEqual(route);
      });

      it("round-trips a route config without limits", async () => {
        const route = await seedRoute(undefined, { rateLimit: undefined, cacheTtlSeconds: undefined });
        const stored = await store.getRoute(route.id);
        expect(stored).toEqual(route);
        expect([stored?.rateLimit, stored?.cacheTtlSeconds]).toEqual([undefined, undefined]);
      });

      it("round-trips a zero cache TTL", async () => {
        const route = await seedRoute(undefined, { cacheTtlSeconds: 0 });
        expect((await store.getRoute(route.id))?.cacheTtlSeconds).toBe(0);
      });

      it("answers undefined for an unknown route config id", async () => {
        expect(await store.getRoute(randomUUID())).toBeUndefined();
      });

      it("rejects a second config for one project, method and path with AlreadyExists", async () => {
        const route = await seedRoute();
        const err = await rejectionOf(store.insertRoute(makeRoute(route.projectId, { path: route.path, method: route.method })));
        expect(err.code).toBe(Code.AlreadyExists);
      });

      it("accepts the same path under another method or in another project", async () => {
        const route = await seedRoute();
        const otherMethod = await seedRoute(route.projectId, { path: route.path, method: "POST" });
        const otherProject = await seedRoute(undefined, { path: route.path, method: route.method });
        expect([await store.getRoute(otherMethod.id), await store.getRoute(otherProject.id)]).toEqual([otherMethod, otherProject]);
      });

      it("lists a project's route configs oldest first, with their count as total", async () => {
        const project = await seedProject();
        const newest = await seedRoute(project.id, { createdAt: at(30) });
        const oldest = await seedRoute(project.id, { createdAt: at(10) });
        const middle = await seedRoute(project.id, { createdAt: at(20) });
        await seedRoute();
        expect(await store.listRoutes(project.id, 0, FAR)).toEqual({ items: [oldest, middle, newest], total: 3 });
      });

      it("answers the page of route configs at offset and limit with the total of all pages", async () => {
        const project = await seedProject();
        const routes: RouteRecord[] = [];
        for (let i = 0; i < 4; i++) routes.push(await seedRoute(project.id, { createdAt: at(i) }));
        expect(await store.listRoutes(project.id, 2, 5)).toEqual({ items: routes.slice(2), total: 4 });
      });

      it("replaces the editable fields and updatedAt, keeping project and creation time", async () => {
        const route = await seedRoute();
        const edited = {
          ...route, method: "DELETE", path: `/api/v1/other/${randomUUID()}`, service: "analytics", rateLimit: 5, cacheTtlSeconds: 0,
          active: false, updatedAt: at(60),
        };
        expect(await store.updateRoute({ ...edited, projectId: randomUUID(), createdAt: at(50) })).toEqual(edited);
        expect(await store.getRoute(route.id)).toEqual(edited);
      });

      it("clears the optional limits the replacement leaves undefined", async () => {
        const route = await seedRoute();
        await store.updateRoute({ ...route, rateLimit: undefined, cacheTtlSeconds: undefined, updatedAt: at(60) });
        const stored = await store.getRoute(route.id);
        expect([stored?.rateLimit, stored?.cacheTtlSeconds]).toEqual([undefined, undefined]);
      });

      it("answers undefined when updating an unknown route config", async () => {
        expect(await store.updateRoute(makeRoute(randomUUID()))).toBeUndefined();
      });

      it("rejects an update onto another config's method and path with AlreadyExists", async () => {
        const taken = await seedRoute();
        const route = await seedRoute(taken.projectId);
        const err = await rejectionOf(store.updateRoute({ ...route, path: taken.path, updatedAt: at(60) }));
        expect(err.code).toBe(Code.AlreadyExists);
        expect(await store.getRoute(route.id)).toEqual(route);
      });

      it("deletes a route config, answering the deleted record", async () => {
        const route = await seedRoute();
        expect(await store.deleteRoute(route.id)).toEqual(route);
        expect(await store.getRoute(route.id)).toBeUndefined();
      });

      it("answers undefined when deleting an unknown route config", async () => {
        expect(await store.deleteRoute(randomUUID())).toBeUndefined();
      });

      it("answers a route config locked inside a transaction", async () => {
        const route = await seedRoute(undefined, { rateLimit: undefined });
        expect(await store.transaction((tx) => tx.lockRoute(route.id))).toEqual(route);
      });

      it("answers undefined when locking an unknown route config", async () => {
        expect(await store.transaction((tx) => tx.lockRoute(randomUUID()))).toBeUndefined();
      });

      it("holds a concurrent change of a locked route config until the transaction commits", async () => {
        const route = await seedRoute();
        const order = await raceAgainstLock((tx) => tx.lockRoute(route.id),
          () => store.updateRoute({ ...route, active: false, updatedAt: at(60) }));
        expect(order).toEqual(["commit", "change"]);
        expect((await store.getRoute(route.id))?.active).toBe(false);
      });

      it("answers a project's active route configs only, and no other project's", async () => {
        const project = await seedProject();
        const active = await seedRoute(project.id);
        await seedRoute(project.id, { active: false });
        await seedRoute();
        expect(await store.activeRoutesOfProject(project.id)).toEqual([active]);
      });
    });

    describe("route events", () => {
      it("round-trips an upserted event's route, its dates and its unset limits", async () => {
        const route = makeRoute(randomUUID(), { rateLimit: undefined, cacheTtlSeconds: 0, createdAt: at(1), updatedAt: at(2) });
        const event = { kind: "upserted" as const, routeId: route.id, route, occurredAt: at(3) };
        const version = await appendRouteEvent(event);
        const [listed] = await store.listRouteEvents(version - 1n, 1);
        expect(listed).toEqual({ ...event, version });
        const stored = listed?.kind === "upserted" ? listed.route : undefined;
        expect([stored?.createdAt instanceof Date, stored?.rateLimit]).toEqual([true, undefined]);
      });

      it("round-trips a deleted event", async () => {
        const event = deletedEvent(at(7));
        const version = await appendRouteEvent(event);
        expect(await store.listRouteEvents(version - 1n, 1)).toEqual([{ ...event, version }]);
      });

      it("appends route events with strictly increasing versions and lists those after a version in order", async () => {
        const events = [deletedEvent(), deletedEvent(), deletedEvent()];
        const versions: bigint[] = [];
        for (const e of events) versions.push(await appendRouteEvent(e));
        expect(versions[0]! < versions[1]! && versions[1]! < versions[2]!).toBe(true);
        const listed = await store.listRouteEvents(versions[0]!, FAR);
        expect(listed.map((e) => [e.version, e.routeId])).toEqual([[versions[1], events[1]!.routeId], [versions[2], events[2]!.routeId]]);
      });

      it("lists at most limit route events", async () => {
        const first = await appendRouteEvent(deletedEvent());
        const second = await appendRouteEvent(deletedEvent());
        await appendRouteEvent(deletedEvent());
        expect((await store.listRouteEvents(first, 1)).map((e) => e.version)).toEqual([second]);
      });

      it("refuses to append a route event outside a transaction, appending nothing", async () => {
        const before = await store.routeEventRange();
        await expect(store.appendRouteEvent(deletedEvent())).rejects.toThrow();
        expect(await store.routeEventRange()).toEqual(before);
      });

      it("answers the newest route event version as the last of the range", async () => {
        const first = await appendRouteEvent(deletedEvent());
        const last = await appendRouteEvent(deletedEvent());
        const range = await store.routeEventRange();
        expect(range.last).toBe(last);
        expect(range.first !== undefined && range.first <= first).toBe(true);
      });

      it("answers the oldest kept route event version as the first of the range", async () => {
        const kept = await appendRouteEvent(deletedEvent());
        await store.pruneEvents(at(FAR * DAY));
        const newest = await appendRouteEvent(deletedEvent());
        expect(await store.routeEventRange()).toEqual({ first: kept, last: newest });
      });

      it("snapshots the active route configs only, as of the newest route event", async () => {
        const project = await seedProject();
        const active = await seedRoute(project.id);
        await seedRoute(project.id, { active: false });
        const version = await appendRouteEvent({ kind: "upserted", routeId: active.id, route: active, occurredAt: at(0) });
        const snapshot = await store.snapshotActiveRoutes();
        expect(snapshot.version).toBe(version);
        expect(snapshot.routes.filter((r) => r.projectId === project.id)).toEqual([active]);
        expect(snapshot.routes.every((r) => r.active)).toBe(true);
      });
    });

    describe("pruning events", () => {
      it("forgets key and route events older than the cut-off, answering how many", async () => {
        // Older than the other pruning test's events, so neither disturbs the other's count.
        const keyVersions = await appendKeyEvents([makeKeyEvent({ occurredAt: at(-30 * DAY) }), makeKeyEvent({ occurredAt: at(-20 * DAY) })]);
        const recentKey = makeKeyEvent({ occurredAt: at(0) });
        const [recentKeyVersion] = await appendKeyEvents([recentKey]);
        const oldRoute = await appendRouteEvent(deletedEvent(at(-30 * DAY)));
        const recentRoute = deletedEvent(at(0));
        const recentRouteVersion = await appendRouteEvent(recentRoute);
        expect(await store.pruneEvents(at(-10 * DAY))).toBe(3);
        expect(await store.listKeyEvents(keyVersions[0]! - 1n, FAR)).toEqual([{ ...recentKey, version: recentKeyVersion }]);
        expect(await store.listRouteEvents(oldRoute - 1n, FAR)).toEqual([{ ...recentRoute, version: recentRouteVersion }]);
      });

      it("keeps the newest event of each log even when it is older than the cut-off", async () => {
        const [, newestKey] = await appendKeyEvents([makeKeyEvent({ occurredAt: at(-3 * DAY) }), makeKeyEvent({ occurredAt: at(-3 * DAY) })]);
        await appendRouteEvent(deletedEvent(at(-3 * DAY)));
        const newestRoute = await appendRouteEvent(deletedEvent(at(-3 * DAY)));
        expect(await store.pruneEvents(at(-DAY))).toBe(2);
        expect([await store.lastKeyEventVersion(), (await store.listKeyEvents(newestKey! - 1n, FAR)).map((e) => e.version)])
          .toEqual([newestKey, [newestKey]]);
        expect((await store.routeEventRange()).last).toBe(newestRoute);
        expect((await store.listRouteEvents(newestRoute - 1n, FAR)).map((e) => e.version)).toEqual([newestRoute]);
      });
    });

    describe("transactions", () => {
      it("commits the writes of fn and answers its result", async () => {
        const project = makeProject();
        const result = await store.transaction(async (tx) => {
          await tx.insertProject(project);
          return "done";
        });
        expect(result).toBe("done");
        expect(await store.getProject(project.id)).toEqual(project);
      });

      it("rolls back the change and the events appended with it, and rethrows, when fn throws", async () => {
        const project = makeProject();
        const keyBefore = await store.lastKeyEventVersion();
        const routesBefore = await store.routeEventRange();
        const boom = new Error("boom");
        const run = store.transaction(async (tx) => {
          await tx.insertProject(project);
          await tx.appendKeyEvent(makeKeyEvent({ projectId: project.id }));
          await tx.appendRouteEvent(deletedEvent());
          throw boom;
        });
        await expect(run).rejects.toBe(boom);
        expect(await store.getProject(project.id)).toBeUndefined();
        expect(await store.lastKeyEventVersion()).toBe(keyBefore);
        expect(await store.routeEventRange()).toEqual(routesBefore);
      });

      it("joins the enclosing transaction when called on a transaction's store", async () => {
        const project = makeProject();
        const boom = new Error("boom");
        const run = store.transaction(async (tx) => {
          await tx.transaction((inner) => inner.insertProject(project));
          throw boom;
        });
        await expect(run).rejects.toBe(boom);
        expect(await store.getProject(project.id)).toBeUndefined();
      });
    });

    describe("concurrency", () => {
      // More transactions than a typical pool has connections (default 10).
      const N = 24;

      it("gives concurrent transactions distinct key event versions, listed in order with none missing", async () => {
        const events = Array.from({ length: N }, () => makeKeyEvent());
        const versions = await Promise.all(events.map((e) => store.transaction(async (tx) => {
          const version = await tx.appendKeyEvent(e);
          await tx.getProject(randomUUID()); // hold the transaction open a little longer
          return version;
        })));
        expect(new Set(versions).size).toBe(N);
        const expected = events.map((e, i) => ({ ...e, version: versions[i]! })).sort((a, b) => byVersion(a.version, b.version));
        expect(await store.listKeyEvents(expected[0]!.version - 1n, FAR)).toEqual(expected);
      });

      it("lets a reader following the key events while transactions commit concurrently miss none", async () => {
        const start = await store.lastKeyEventVersion();
        let done = false;
        // Transactions stay open for different times after appending, so without
        // serialized appends later versions would often commit before earlier ones.
        const writing = Promise.all(Array.from({ length: N }, (_, i) => store.transaction(async (tx) => {
          const version = await tx.appendKeyEvent(makeKeyEvent());
          for (let j = 0; j < (i * 3) % 8; j++) await tx.getProject(randomUUID());
          return version;
        }))).finally(() => { done = true; });
        const seen: bigint[] = [];
        let cursor = start;
        // Bounded: ends with the first empty read after every writer finished.
        for (;;) {
          const finished = done;
          const batch = await store.listKeyEvents(cursor, FAR);
          for (const e of batch) {
            seen.push(e.version);
            cursor = e.version;
          }
          if (finished && batch.length === 0) break;
        }
        expect(seen).toEqual([...(await writing)].sort(byVersion));
      });
    });

    describe("on an empty store", () => {
      let empty: OpenedProjectStore | undefined;
      beforeAll(async () => {
        empty = await open();
      });
      afterAll(async () => {
        await empty?.close();
      });

      it("answers 0 as the last key event version", async () => {
        expect(await empty!.store.lastKeyEventVersion()).toBe(0n);
      });

      it("answers no first and 0 as the last route event version", async () => {
        expect(await empty!.store.routeEventRange()).toEqual({ first: undefined, last: 0n });
      });

      it("snapshots no route configs as of version 0", async () => {
        expect(await empty!.store.snapshotActiveRoutes()).toEqual({ routes: [], version: 0n });
      });

      it("lists no projects with a total of 0", async () => {
        expect(await empty!.store.listProjects({ sort: "name", order: "asc", offset: 0, limit: 20 })).toEqual({ items: [], total: 0 });
      });

      it("prunes nothing", async () => {
        expect(await empty!.store.pruneEvents(at(FAR * DAY))).toBe(0);
      });
    });
  });
}

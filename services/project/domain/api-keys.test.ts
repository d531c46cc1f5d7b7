import { createHash, randomUUID } from "node:crypto";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fieldViolationsOf } from "../../../lib/errors.js";
import { createNotifier, type Notifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import { createLogger } from "../../../lib/logger.js";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore, type RelationalStore } from "../../../lib/stores/postgres.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import type { KeyEventRecord, ProjectStore } from "../storage/port.js";
import { createPostgresProjectStore } from "../storage/postgres.js";
import { createApiKeysDomain } from "./api-keys.js";
import { createProjectsDomain } from "./projects.js";
import { createUsageRecorder, type UsageRecorder } from "./usage-recorder.js";

// Fake clock: only the tests move it, and only forward.
let t = new Date("2026-01-01T00:00:00Z");
const now = () => t;
const advance = (seconds: number) => {
  t = new Date(t.getTime() + seconds * 1_000);
};

/** createNotifier, also telling the test when a feed reader starts waiting (it has read all there was). */
function observedNotifier(): Notifier & { nextWait(): Promise<void> } {
  const inner = createNotifier();
  let waiting: (() => void)[] = [];
  return {
    notify: () => inner.notify(),
    wait(ms, signal) {
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
      return inner.wait(ms, signal);
    },
    nextWait: () => new Promise<void>((resolve) => { waiting.push(resolve); }),
  };
}

let db: RelationalStore;
let store: ProjectStore;
let usage: UsageRecorder;
/** Every batch of uses the usage recorder wrote. */
const touched: Map<string, Date>[] = [];
const events = observedNotifier();
let projects: ReturnType<typeof createProjectsDomain>;
let keys: ReturnType<typeof createApiKeysDomain>;

beforeAll(async () => {
  db = await openRelationalStore({});
  await migrate(db.pool, "project", await loadMigrations(join(import.meta.dirname, "..", "storage", "migrations")));
  store = createPostgresProjectStore(db.pool);
  const recording: ProjectStore = {
    ...store,
    touchApiKeys: (uses) => {
      touched.push(new Map(uses));
      return store.touchApiKeys(uses);
    },
  };
  // Never started: the tests flush explicitly.
  usage = createUsageRecorder({ store: recording, logger: createLogger({ service: "project", level: "silent" }), flushMs: 3_600_000 });
  const deps = { store, now, newId: randomUUID, events };
  projects = createProjectsDomain(deps);
  keys = createApiKeysDomain({ ...deps, usage });
});
afterAll(async () => {
  await db?.close();
});

const newUser = (): Caller => ({ userId: `user-${randomUUID()}`, roles: ["user"], isAdmin: false });
const newAdmin = (): Caller => ({ userId: `admin-${randomUUID()}`, roles: ["user", "admin"], isAdmin: true });
const fieldsOf = (err: unknown) => fieldViolationsOf(err).map((v) => v.field);
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A new user's project and a key in it. */
async function keyed(input: { name?: string; expiresAt?: Date } = {}) {
  const owner = newUser();
  const project = await projects.create(owner, { name: `project ${randomUUID()}`, description: "" });
  const key = await keys.create(owner, project.id, { name: "ci", ...input });
  return { owner, project, key };
}

/** Key events appended after `after`. */
const keyEventsAfter = async (after: bigint) => (await store.listKeyEvents(after, 1_000)).map(({ version: _, ...e }) => e);

/** A watch feed with a bounded life: it ends after 5 s even when the test forgets to stop it. */
function watching(open: (signal: AbortSignal) => AsyncGenerator<KeyEventRecord>) {
  const ctrl = new AbortController();
  const feed = open(AbortSignal.any([ctrl.signal, AbortSignal.timeout(5_000)]));
  return {
    /** The next `n` events, or fewer when the feed ends first. */
    async take(n: number): Promise<KeyEventRecord[]> {
      const out: KeyEventRecord[] = [];
      while (out.length < n) {
        const next = await feed.next();
        if (next.done) break;
        out.push(next.value);
      }
      return out;
    },
    async stop() {
      ctrl.abort();
      await feed.return(undefined);
    },
  };
}

describe("create", () => {
  it("answers a plaintext key of gw_ and 43 base62 digits", async () => {
    const { key } = await keyed();
    expect(key.key).toMatch(/^gw_[0-9A-Za-z]{43}$/);
  });

  it("answers the first 11 characters of the key as its prefix", async () => {
    const { key } = await keyed();
    expect(key.prefix).toBe(key.key.slice(0, 11));
  });

  it("answers a different key each time", async () => {
    const { owner, project, key } = await keyed();
    const second = await keys.create(owner, project.id, { name: "ci" });
    expect(second.key).not.toBe(key.key);
  });

  it("stores the record with the name trimmed, created now, without the plaintext", async () => {
    const { owner, project } = await keyed();
    const expiresAt = new Date(now().getTime() + 86_400_000);
    const { key: _, ...record } = await keys.create(owner, project.id, { name: "  deploy bot ", expiresAt });
    expect(record).toMatchObject({ projectId: project.id, name: "deploy bot", expiresAt, createdAt: now() });
    expect(await store.getApiKey(record.id)).toEqual(record);
  });

  it("stores the SHA-256 of the key, by which it is found", async () => {
    const { key } = await keyed();
    expect((await store.findApiKeyByHash(sha256(key.key)))?.id).toBe(key.id);
  });

  it("stores the plaintext in no column", async () => {
    const { key } = await keyed();
    const { rows } = await db.pool.query<Record<string, unknown>>("SELECT * FROM api_keys WHERE id = $1", [key.id]);
    const secret = key.key.slice(key.prefix.length);
    expect(rows).toHaveLength(1);
    expect(Object.values(rows[0]!).filter((value) => String(value).includes(secret))).toEqual([]);
  });

  it.each([
    { when: "in the past", offsetSeconds: -1 },
    { when: "now", offsetSeconds: 0 },
  ])("rejects an expiry $when with InvalidArgument naming expires_at", async ({ offsetSeconds }) => {
    const owner = newUser();
    const project = await projects.create(owner, { name: `project ${randomUUID()}`, description: "" });
    const err = await rejectionOf(keys.create(owner, project.id, { name: "ci", expiresAt: new Date(now().getTime() + offsetSeconds * 1_000) }));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["expires_at"]]);
    expect((await store.listApiKeys(project.id, 0, 10)).total).toBe(0);
  });

  it("rejects a blank name with InvalidArgument naming name", async () => {
    const { owner, project } = await keyed();
    const err = await rejectionOf(keys.create(owner, project.id, { name: "  " }));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["name"]]);
  });

  it("answers NotFound for another user's project and stores no key", async () => {
    const { project } = await keyed();
    const err = await rejectionOf(keys.create(newUser(), project.id, { name: "stolen" }));
    expect(err.code).toBe(Code.NotFound);
    expect((await store.listApiKeys(project.id, 0, 10)).total).toBe(1);
  });
});

describe("list", () => {
  it("pages through a project's keys newest first with the total", async () => {
    const { owner, project, key: first } = await keyed();
    advance(1);
    const second = await keys.create(owner, project.id, { name: "second" });
    advance(1);
    const third = await keys.create(owner, project.id, { name: "third" });
    const page1 = await keys.list(owner, project.id, { page: 1, limit: 2 });
    const page2 = await keys.list(owner, project.id, { page: 2, limit: 2 });
    expect([page1.items.map((k) => k.id), page1.total, page2.items.map((k) => k.id)]).toEqual([[third.id, second.id], 3, [first.id]]);
  });

  it("never answers the plaintext of a key", async () => {
    const { owner, project, key } = await keyed();
    const page = await keys.list(owner, project.id, { page: 0, limit: 0 });
    expect(page.items).toHaveLength(1);
    expect(JSON.stringify(page.items)).not.toContain(key.key.slice(key.prefix.length));
  });

  it("answers NotFound for another user's project", async () => {
    const { project } = await keyed();
    expect((await rejectionOf(keys.list(newUser(), project.id, { page: 1, limit: 20 }))).code).toBe(Code.NotFound);
  });

  it("rejects a limit above 100 with InvalidArgument naming limit", async () => {
    const { owner, project } = await keyed();
    expect(fieldsOf(await rejectionOf(keys.list(owner, project.id, { page: 1, limit: 101 })))).toEqual(["limit"]);
  });
});

describe("revoke", () => {
  it("makes the key invalid at once", async () => {
    const { owner, key } = await keyed();
    await keys.revoke(owner, key.id);
    expect(await keys.verify(sha256(key.key))).toBeUndefined();
  });

  it("records the revocation time", async () => {
    const { owner, key } = await keyed();
    advance(10);
    await keys.revoke(owner, key.id);
    expect((await store.getApiKey(key.id))?.revokedAt).toEqual(now());
  });

  it("appends one REVOKED event however often the key is revoked", async () => {
    const { owner, project, key } = await keyed();
    const before = await store.lastKeyEventVersion();
    await keys.revoke(owner, key.id);
    const revokedAt = now();
    advance(10);
    await keys.revoke(owner, key.id);
    expect(await keyEventsAfter(before))
      .toEqual([{ kind: "revoked", keyId: key.id, keyHash: key.keyHash, projectId: project.id, occurredAt: revokedAt }]);
  });

  it("keeps the first revocation time when revoked again", async () => {
    const { owner, key } = await keyed();
    await keys.revoke(owner, key.id);
    const revokedAt = now();
    advance(10);
    await keys.revoke(owner, key.id);
    expect((await store.getApiKey(key.id))?.revokedAt).toEqual(revokedAt);
  });

  it("answers NotFound for another user's key and leaves it valid", async () => {
    const { key } = await keyed();
    expect((await rejectionOf(keys.revoke(newUser(), key.id))).code).toBe(Code.NotFound);
    expect((await keys.verify(sha256(key.key)))?.id).toBe(key.id);
  });

  it.each(["not-a-uuid", randomUUID()])("answers NotFound for an unknown key id %s", async (id) => {
    expect((await rejectionOf(keys.revoke(newUser(), id))).code).toBe(Code.NotFound);
  });

  it("lets an admin revoke another user's key", async () => {
    const { key } = await keyed();
    await keys.revoke(newAdmin(), key.id);
    expect((await store.getApiKey(key.id))?.revokedAt).toEqual(now());
  });
});

describe("verify", () => {
  it("answers a valid key with its project and the project owner as user", async () => {
    const expiresAt = new Date(now().getTime() + 3_600_000);
    const { owner, project, key } = await keyed({ name: "deploy", expiresAt });
    expect(await keys.verify(sha256(key.key))).toEqual({ id: key.id, projectId: project.id, userId: owner.userId, name: "deploy", expiresAt });
  });

  it("answers undefined for a revoked key", async () => {
    const { owner, key } = await keyed();
    await keys.revoke(owner, key.id);
    expect(await keys.verify(sha256(key.key))).toBeUndefined();
  });

  it("answers a key as valid until its expiry", async () => {
    const { key } = await keyed({ expiresAt: new Date(now().getTime() + 60_000) });
    advance(59);
    expect((await keys.verify(sha256(key.key)))?.id).toBe(key.id);
  });

  it("answers undefined for an expired key", async () => {
    const { key } = await keyed({ expiresAt: new Date(now().getTime() + 60_000) });
    advance(61);
    expect(await keys.verify(sha256(key.key))).toBeUndefined();
  });

  it("answers undefined for an unknown key", async () => {
    expect(await keys.verify(sha256(`gw_${randomUUID()}`))).toBeUndefined();
  });

  it("answers undefined for a key of a deleted project", async () => {
    const { owner, project, key } = await keyed();
    await projects.delete(owner, project.id);
    expect(await keys.verify(sha256(key.key))).toBeUndefined();
  });

  it.each([
    { what: "empty", hash: "" },
    { what: "too short", hash: "ab".repeat(31) },
    { what: "upper-case", hash: sha256("x").toUpperCase() },
    { what: "not hex", hash: "z".repeat(64) },
  ])("rejects a malformed ($what) hash with InvalidArgument naming key_hash", async ({ hash }) => {
    const err = await rejectionOf(keys.verify(hash));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["key_hash"]]);
  });
});

describe("usage", () => {
  const lastUsed = async (id: string) => (await store.getApiKey(id))?.lastUsedAt;
  const usesOf = (id: string) => touched.flatMap((batch) => (batch.has(id) ? [batch.get(id)] : []));

  it("writes no last use until the recorder flushes", async () => {
    const { key } = await keyed();
    await keys.verify(sha256(key.key));
    expect(await lastUsed(key.id)).toBeUndefined();
  });

  it("records the last use once flushed", async () => {
    const { key } = await keyed();
    await keys.verify(sha256(key.key));
    await usage.flush();
    expect(await lastUsed(key.id)).toEqual(now());
  });

  it("notes two verifications within a minute as one use, at the first", async () => {
    const { key } = await keyed();
    const first = now();
    await keys.verify(sha256(key.key));
    advance(30);
    await keys.verify(sha256(key.key));
    await usage.flush();
    expect([usesOf(key.id), await lastUsed(key.id)]).toEqual([[first], first]);
  });

  it("records a verification 61 s after the noted one again", async () => {
    const { key } = await keyed();
    await keys.verify(sha256(key.key));
    await usage.flush();
    advance(61);
    await keys.verify(sha256(key.key));
    await usage.flush();
    expect(await lastUsed(key.id)).toEqual(now());
  });

  it("notes no use of a revoked key", async () => {
    const { owner, key } = await keyed();
    await keys.revoke(owner, key.id);
    await keys.verify(sha256(key.key));
    await usage.flush();
    expect([usesOf(key.id), await lastUsed(key.id)]).toEqual([[], undefined]);
  });
});

describe("watch", () => {
  it("starts from now when watching from version 0, replaying nothing older", async () => {
    const older = await keyed();
    const newer = await keyed();
    await keys.revoke(older.owner, older.key.id);
    const watch = watching((signal) => keys.watch(0n, signal));
    try {
      const idle = events.nextWait();
      const next = watch.take(1);
      await idle;
      await keys.revoke(newer.owner, newer.key.id);
      expect((await next).map((e) => [e.kind, e.keyId])).toEqual([["revoked", newer.key.id]]);
    } finally {
      await watch.stop();
    }
  });

  it("replays the events after a version, then follows new ones", async () => {
    const a = await keyed();
    const b = await keyed();
    const c = await keyed();
    await keys.revoke(a.owner, a.key.id);
    const seen = await store.lastKeyEventVersion();
    await keys.revoke(b.owner, b.key.id);
    const watch = watching((signal) => keys.watch(seen, signal));
    try {
      const replayed = await watch.take(1);
      await keys.revoke(c.owner, c.key.id);
      const followed = await watch.take(1);
      expect([...replayed, ...followed].map((e) => e.keyId)).toEqual([b.key.id, c.key.id]);
    } finally {
      await watch.stop();
    }
  });

  it("delivers a project's deletion as a PROJECT_DELETED event for its key", async () => {
    const { owner, project, key } = await keyed();
    const watch = watching((signal) => keys.watch(0n, signal));
    try {
      const idle = events.nextWait();
      const next = watch.take(1);
      await idle;
      await projects.delete(owner, project.id);
      expect((await next).map((e) => [e.kind, e.keyId, e.keyHash])).toEqual([["project_deleted", key.id, key.keyHash]]);
    } finally {
      await watch.stop();
    }
  });
});

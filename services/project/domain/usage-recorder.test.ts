import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../../lib/logger.js";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore, type RelationalStore } from "../../../lib/stores/postgres.js";
import type { ProjectStore } from "../storage/port.js";
import { createPostgresProjectStore } from "../storage/postgres.js";
import { createUsageRecorder } from "./usage-recorder.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
/** The instant `seconds` after T0. */
const at = (seconds: number): Date => new Date(T0 + seconds * 1_000);
const HOUR_MS = 3_600_000;

let db: RelationalStore;
let store: ProjectStore;

beforeAll(async () => {
  db = await openRelationalStore({});
  await migrate(db.pool, "project", await loadMigrations(join(import.meta.dirname, "..", "storage", "migrations")));
  store = createPostgresProjectStore(db.pool);
});
afterAll(async () => {
  await db?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A stored key in a new project; answers its id. */
async function storedKey(): Promise<string> {
  const projectId = randomUUID();
  await store.insertProject({ id: projectId, ownerId: `user-${randomUUID()}`, name: "p", description: "", createdAt: at(0), updatedAt: at(0) });
  const id = randomUUID();
  await store.insertApiKey({ id, projectId, keyHash: randomUUID().replaceAll("-", "").repeat(2), prefix: "gw_0aB1cD2e", name: "k", createdAt: at(0) });
  return id;
}

/**
 * A recorder over the embedded store (or a store whose touchApiKeys fails)
 * that keeps every batch it wrote and every warning it logged. Its timer is
 * never started unless a test says so: tests flush explicitly.
 */
function recorder(opts: { failing?: boolean; flushMs?: number } = {}) {
  const batches: Map<string, Date>[] = [];
  const warnings: Record<string, unknown>[] = [];
  const logger = createLogger({ service: "project", level: "warn", destination: { write: (line: string) => { warnings.push(JSON.parse(line)); } } });
  const recording: ProjectStore = {
    ...store,
    async touchApiKeys(uses) {
      batches.push(new Map(uses));
      if (opts.failing) throw new Error("database down");
      await store.touchApiKeys(uses);
    },
  };
  const usage = createUsageRecorder({ store: recording, logger, flushMs: opts.flushMs ?? HOUR_MS });
  return { usage, batches, warnings };
}

const lastUsed = async (id: string) => (await store.getApiKey(id))?.lastUsedAt;

describe("note and flush", () => {
  it("writes nothing before a flush", async () => {
    const { usage, batches } = recorder();
    usage.note(await storedKey(), at(0));
    expect(batches).toEqual([]);
  });

  it("writes the uses of several keys in one batch on flush", async () => {
    const [a, b] = [await storedKey(), await storedKey()];
    const { usage, batches } = recorder();
    usage.note(a, at(1));
    usage.note(b, at(2));
    await usage.flush();
    expect(batches).toEqual([new Map([[a, at(1)], [b, at(2)]])]);
    expect([await lastUsed(a), await lastUsed(b)]).toEqual([at(1), at(2)]);
  });

  it("coalesces the uses of one key within a minute into the first", async () => {
    const id = await storedKey();
    const { usage, batches } = recorder();
    usage.note(id, at(0));
    usage.note(id, at(30));
    usage.note(id, at(59.999));
    await usage.flush();
    expect(batches).toEqual([new Map([[id, at(0)]])]);
  });

  it("coalesces per key: another key's use within the minute is noted", async () => {
    const [a, b] = [await storedKey(), await storedKey()];
    const { usage, batches } = recorder();
    usage.note(a, at(0));
    usage.note(b, at(10));
    await usage.flush();
    expect([...batches[0]!.keys()]).toEqual([a, b]);
  });

  it("notes a key's use again a minute after the noted one", async () => {
    const id = await storedKey();
    const { usage, batches } = recorder();
    usage.note(id, at(0));
    await usage.flush();
    usage.note(id, at(60));
    await usage.flush();
    expect(batches).toEqual([new Map([[id, at(0)]]), new Map([[id, at(60)]])]);
    expect(await lastUsed(id)).toEqual(at(60));
  });

  it("does not write when nothing is pending", async () => {
    const { usage, batches } = recorder();
    await usage.flush();
    expect(batches).toEqual([]);
  });

  it("writes each use once: a second flush has nothing left", async () => {
    const { usage, batches } = recorder();
    usage.note(await storedKey(), at(0));
    await usage.flush();
    await usage.flush();
    expect(batches).toHaveLength(1);
  });
});

describe("a failed write", () => {
  it("resolves the flush and logs a warning", async () => {
    const { usage, warnings } = recorder({ failing: true });
    usage.note(await storedKey(), at(0));
    await expect(usage.flush()).resolves.toBeUndefined();
    expect(warnings).toEqual([expect.objectContaining({ level: 40, msg: "could not record API key use", keys: 1 })]);
  });

  it("lets the next use of the key be noted again, within the minute", async () => {
    const id = await storedKey();
    const { usage, batches } = recorder({ failing: true });
    usage.note(id, at(0));
    await usage.flush();
    usage.note(id, at(1));
    await usage.flush();
    expect(batches).toEqual([new Map([[id, at(0)]]), new Map([[id, at(1)]])]);
  });
});

describe("start and stop", () => {
  it("flushes every flushMs once started", async () => {
    vi.useFakeTimers();
    const { usage, batches } = recorder({ failing: true, flushMs: 1_000 });
    usage.start();
    try {
      usage.note(randomUUID(), at(0));
      await vi.advanceTimersByTimeAsync(999);
      expect(batches).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(batches).toHaveLength(1);
    } finally {
      await usage.stop();
    }
  });

  it("writes what is pending on stop", async () => {
    const id = await storedKey();
    const { usage } = recorder();
    usage.start();
    usage.note(id, at(5));
    await usage.stop();
    expect(await lastUsed(id)).toEqual(at(5));
  });
});

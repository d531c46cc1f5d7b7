import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { describe, expect, it, onTestFinished } from "vitest";
import { fieldViolationsOf } from "../../../lib/errors.js";
import { createNotifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import { createLogger } from "../../../lib/logger.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { callers, createFakeDirectory, makeLogInput } from "../../../test/support/logging-harness.js";
import { recordStream, type StreamRecorder } from "../../../test/support/project-harness.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createDocumentLogStore } from "../storage/documents.js";
import type { LogEntry } from "../storage/port.js";
import { createLoggingDomain, MAX_BATCH, type FilterInput } from "./logging-domain.js";
import type { LogInput } from "./records.js";
import { createTailHub } from "./tail-hub.js";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);
const logger = createLogger({ service: "logging", level: "silent" });

// alice owns two projects, bob one; carol owns none.
const owners = { alice: ["pA1", "pA2"], bob: ["pB"], carol: [] };

interface Setup {
  readonly domain: ReturnType<typeof createLoggingDomain>;
  readonly store: ReturnType<typeof createDocumentLogStore>;
  readonly hub: ReturnType<typeof createTailHub>;
  /** The fake clock: `now` and moving it. */
  readonly clock: { now(): Date; advance(ms: number): void };
}

/** A domain on a fresh embedded store, a fake clock at T0 and the fake directory above. */
async function setup(opts: { errorMinStatus?: number; readSettleMs?: number } = {}): Promise<Setup> {
  const db = createEmbeddedDocumentDb();
  onTestFinished(() => db.close());
  const store = createDocumentLogStore(db);
  await store.prepare();
  let ms = T0;
  const clock = { now: () => new Date(ms), advance: (d: number) => { ms += d; } };
  const notifier = createNotifier();
  const hub = createTailHub({ store, logger, now: clock.now, notifier, pollMs: 200 });
  const domain = createLoggingDomain({
    store, notifier, now: clock.now, directory: createFakeDirectory(owners), tail: hub,
    errorMinStatus: opts.errorMinStatus ?? 500, ...(opts.readSettleMs !== undefined ? { readSettleMs: opts.readSettleMs } : {}),
  });
  return { domain, store, hub, clock };
}

const ids = (entries: readonly { requestId: string }[]) => entries.map((e) => e.requestId);
const everything = { page: 1, limit: 100 };

/** Request ids an admin's unfiltered query answers, newest first. */
async function storedIds(s: Setup): Promise<string[]> {
  return ids((await s.domain.query(callers.admin(), everything)).items);
}

/** Ingests records as the mesh itself would (no caller), each stamped one millisecond after the previous. */
async function ingest(s: Setup, ...inputs: LogInput[]): Promise<LogInput[]> {
  for (const input of inputs) {
    await s.domain.ingestOne(undefined, input);
    s.clock.advance(1);
  }
  return inputs;
}

/** Field names of an INVALID_ARGUMENT rejection. */
async function invalidFields(call: Promise<unknown>): Promise<string[]> {
  const err = await rejectionOf(call);
  expect(err.code).toBe(Code.InvalidArgument);
  return fieldViolationsOf(err).map((v) => v.field).sort();
}

describe("ingestOne", () => {
  it("stores a valid record, stamped with the ingest time", async () => {
    const s = await setup();
    const input = makeLogInput({ timestamp: at(-5_000), projectId: "pA1" });
    await s.domain.ingestOne(undefined, input);
    const { timestamp, ...rest } = input;
    expect(await s.domain.get(callers.admin(), input.requestId)).toEqual({ ...rest, timestamp, ingestedAt: at(0) });
  });

  it("refuses an invalid record with INVALID_ARGUMENT naming each bad field under log., storing nothing", async () => {
    const s = await setup();
    expect(await invalidFields(s.domain.ingestOne(undefined, makeLogInput({ method: "G3T", path: "nope" }))))
      .toEqual(["log.method", "log.path"]);
    expect(await storedIds(s)).toEqual([]);
  });

  it("accepts a retried record without storing it twice or changing the stored one", async () => {
    const s = await setup();
    const [original] = await ingest(s, makeLogInput({ requestId: "retried", statusCode: 200 }));
    s.clock.advance(1_000);
    await s.domain.ingestOne(undefined, { ...original!, statusCode: 503 });
    const stored = await s.domain.get(callers.admin(), "retried");
    expect({ status: stored.statusCode, ingestedAt: stored.ingestedAt }).toEqual({ status: 200, ingestedAt: at(0) });
    expect(await storedIds(s)).toEqual(["retried"]);
  });
});

describe("ingestBatch", () => {
  it("stores every record of a valid batch and counts them", async () => {
    const s = await setup();
    const batch = [makeLogInput({ requestId: "b1" }), makeLogInput({ requestId: "b2" }), makeLogInput({ requestId: "b3" })];
    expect(await s.domain.ingestBatch(undefined, batch)).toEqual({ ingested: 3, duplicates: 0, errors: [] });
    expect((await storedIds(s)).sort()).toEqual(["b1", "b2", "b3"]);
  });

  it("stores nothing when a record is invalid and reports each invalid record by index, fields unprefixed", async () => {
    const s = await setup();
    const batch = [
      makeLogInput({ requestId: "ok-0" }),
      makeLogInput({ requestId: "bad-1", method: "G3T" }),
      makeLogInput({ requestId: "ok-2" }),
      makeLogInput({ requestId: "bad-3", statusCode: 42, latency: -1 }),
    ];
    const result = await s.domain.ingestBatch(undefined, batch);
    expect(result).toEqual({
      ingested: 0, duplicates: 0,
      errors: [
        { index: 1, requestId: "bad-1", message: "method: must be an HTTP method such as GET" },
        { index: 3, requestId: "bad-3", message: "status_code: must be an HTTP status between 100 and 599; latency: must be a number of milliseconds, 0 or more" },
      ],
    });
    expect(await storedIds(s)).toEqual([]);
  });

  it("reports a request id repeated within the batch by the repeating index, storing nothing", async () => {
    const s = await setup();
    const batch = [makeLogInput({ requestId: "same" }), makeLogInput({ requestId: "other" }), makeLogInput({ requestId: "same" })];
    expect(await s.domain.ingestBatch(undefined, batch)).toEqual({
      ingested: 0, duplicates: 0,
      errors: [{ index: 2, requestId: "same", message: "request_id: repeats an earlier record of this batch" }],
    });
    expect(await storedIds(s)).toEqual([]);
  });

  it("refuses more than 1000 records with INVALID_ARGUMENT on logs, storing nothing", async () => {
    const s = await setup();
    const batch = Array.from({ length: MAX_BATCH + 1 }, () => makeLogInput());
    expect(await invalidFields(s.domain.ingestBatch(undefined, batch))).toEqual(["logs"]);
    expect(await storedIds(s)).toEqual([]);
  });

  it("refuses an empty batch with INVALID_ARGUMENT on logs", async () => {
    const s = await setup();
    expect(await invalidFields(s.domain.ingestBatch(undefined, []))).toEqual(["logs"]);
  });

  it("accepts exactly 1000 records", async () => {
    const s = await setup();
    const batch = Array.from({ length: MAX_BATCH }, () => makeLogInput());
    expect(await s.domain.ingestBatch(undefined, batch)).toEqual({ ingested: 1000, duplicates: 0, errors: [] });
    expect((await s.domain.query(callers.admin(), { page: 1, limit: 1 })).total).toBe(1000);
  });

  it("counts a retried batch as the first time and leaves the stored records unchanged", async () => {
    const s = await setup();
    const batch = [makeLogInput({ requestId: "r1" }), makeLogInput({ requestId: "r2" })];
    expect((await s.domain.ingestBatch(undefined, batch)).ingested).toBe(2);
    const before = await s.domain.query(callers.admin(), everything);
    s.clock.advance(60_000);
    expect(await s.domain.ingestBatch(undefined, batch)).toEqual({ ingested: 2, duplicates: 2, errors: [] });
    expect(await s.domain.query(callers.admin(), everything)).toEqual(before);
  });

  it("counts records stored by an earlier batch as accepted duplicates alongside the new ones", async () => {
    const s = await setup();
    await s.domain.ingestBatch(undefined, [makeLogInput({ requestId: "old" })]);
    expect(await s.domain.ingestBatch(undefined, [makeLogInput({ requestId: "old" }), makeLogInput({ requestId: "new" })]))
      .toEqual({ ingested: 2, duplicates: 1, errors: [] });
    expect((await storedIds(s)).sort()).toEqual(["new", "old"]);
  });
});

describe("who may ingest what", () => {
  it("stamps an API key caller's records with the key's project", async () => {
    const s = await setup();
    await s.domain.ingestOne(callers.apiKey("pB"), makeLogInput({ requestId: "by-key", projectId: "pA1" }));
    expect((await s.domain.get(callers.admin(), "by-key")).projectId).toBe("pB");
  });

  it("stamps every record of an API key caller's batch with the key's project", async () => {
    const s = await setup();
    await s.domain.ingestBatch(callers.apiKey("pB"), [makeLogInput({ projectId: "" }), makeLogInput({ projectId: "pA2" })]);
    const page = await s.domain.query(callers.admin(), everything);
    expect(page.items.map((e) => e.projectId)).toEqual(["pB", "pB"]);
  });

  it("refuses with NOT_FOUND a user's record for a project they do not own, storing nothing", async () => {
    const s = await setup();
    const err = await rejectionOf(s.domain.ingestOne(callers.user("alice"), makeLogInput({ projectId: "pB" })));
    expect(err.code).toBe(Code.NotFound);
    expect(await storedIds(s)).toEqual([]);
  });

  it("refuses a user's whole batch with NOT_FOUND when one record names a project they do not own", async () => {
    const s = await setup();
    const batch = [makeLogInput({ projectId: "pA1" }), makeLogInput({ projectId: "pB" })];
    expect((await rejectionOf(s.domain.ingestBatch(callers.user("alice"), batch))).code).toBe(Code.NotFound);
    expect(await storedIds(s)).toEqual([]);
  });

  it("stores a user's record for one of their projects", async () => {
    const s = await setup();
    await s.domain.ingestOne(callers.user("alice"), makeLogInput({ requestId: "mine", projectId: "pA2" }));
    expect((await s.domain.get(callers.user("alice"), "mine")).projectId).toBe("pA2");
  });

  it("stores an admin's record for any project", async () => {
    const s = await setup();
    await s.domain.ingestOne(callers.admin(), makeLogInput({ requestId: "by-admin", projectId: "anyone's" }));
    expect((await s.domain.get(callers.admin(), "by-admin")).projectId).toBe("anyone's");
  });

  // A user (or an API key) writes records through the public API; the "own
  // requests" part of a reader's scope must not let them put records in front
  // of another user.
  it("does not let a user put a record of their project among another user's own requests", async () => {
    const s = await setup();
    await s.domain.ingestOne(callers.user("alice"), makeLogInput({ requestId: "planted", projectId: "pA1", userId: "bob" }))
      .catch(() => undefined); // refusing it is fine too
    expect(ids((await s.domain.query(callers.user("bob"), everything)).items)).not.toContain("planted");
  });
});

describe("query", () => {
  /** One record per tenant situation; answers nothing (ids are fixed). */
  async function seedTenants(s: Setup): Promise<void> {
    await ingest(s,
      makeLogInput({ requestId: "a1", projectId: "pA1", userId: "x" }),
      makeLogInput({ requestId: "a2", projectId: "pA2", userId: "y" }),
      makeLogInput({ requestId: "b1", projectId: "pB", userId: "z" }),
      makeLogInput({ requestId: "alice-at-b", projectId: "pB", userId: "alice" }),
      makeLogInput({ requestId: "alice-none", projectId: "", userId: "alice" }),
      makeLogInput({ requestId: "stray", projectId: "pX", userId: "w" }),
    );
  }

  it("answers an admin every record, newest first", async () => {
    const s = await setup();
    await seedTenants(s);
    expect(ids((await s.domain.query(callers.admin(), everything)).items)).toEqual(["stray", "alice-none", "alice-at-b", "b1", "a2", "a1"]);
  });

  it("answers an API key only its project's records", async () => {
    const s = await setup();
    await seedTenants(s);
    expect(ids((await s.domain.query(callers.apiKey("pB"), everything)).items)).toEqual(["alice-at-b", "b1"]);
  });

  it("answers a user their projects' records and their own requests outside any project", async () => {
    const s = await setup();
    await seedTenants(s);
    expect(ids((await s.domain.query(callers.user("alice"), everything)).items)).toEqual(["alice-none", "a2", "a1"]);
  });

  it("answers a user without projects only their own requests", async () => {
    const s = await setup();
    await seedTenants(s);
    await ingest(s, makeLogInput({ requestId: "carol-own", userId: "carol", projectId: "" }));
    expect(ids((await s.domain.query(callers.user("carol"), everything)).items)).toEqual(["carol-own"]);
  });

  it("matches the method filter case-insensitively", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "g", method: "GET" }), makeLogInput({ requestId: "p", method: "POST" }));
    expect(ids((await s.domain.query(callers.admin(), { ...everything, method: "post" })).items)).toEqual(["p"]);
  });

  it("passes every filter to the store (all must match)", async () => {
    const s = await setup();
    const base = { userId: "u", projectId: "pA1", apiKeyId: "k", statusCode: 404, method: "GET", path: "/api/v1/x", timestamp: at(-1_000) };
    await ingest(s,
      makeLogInput({ ...base, requestId: "hit" }),
      makeLogInput({ ...base, requestId: "other-user", userId: "v" }),
      makeLogInput({ ...base, requestId: "other-project", projectId: "pA2" }),
      makeLogInput({ ...base, requestId: "other-key", apiKeyId: "k2" }),
      makeLogInput({ ...base, requestId: "other-status", statusCode: 200 }),
      makeLogInput({ ...base, requestId: "other-method", method: "PUT" }),
      makeLogInput({ ...base, requestId: "other-path", path: "/api/v2/x" }),
      makeLogInput({ ...base, requestId: "too-early", timestamp: at(-2_001) }),
      makeLogInput({ ...base, requestId: "too-late", timestamp: at(0) }),
    );
    const filter: FilterInput = {
      userId: "u", projectId: "pA1", apiKeyId: "k", statusCode: 404, method: "get", pathPrefix: "/api/v1", from: at(-2_000), to: at(0),
    };
    const page = await s.domain.query(callers.admin(), { ...everything, ...filter });
    expect({ ids: ids(page.items), total: page.total }).toEqual({ ids: ["hit"], total: 1 });
  });

  it("answers the requested page and page size with the total of all matches", async () => {
    const s = await setup();
    await ingest(s, ...Array.from({ length: 5 }, (_, i) => makeLogInput({ requestId: `n${i}` })));
    const page = await s.domain.query(callers.admin(), { page: 2, limit: 2 });
    expect({ ids: ids(page.items), total: page.total, page: page.page, limit: page.limit }).toEqual({ ids: ["n2", "n1"], total: 5, page: 2, limit: 2 });
  });

  it("uses page 1 and 20 records per page when they are 0", async () => {
    const s = await setup();
    await ingest(s, ...Array.from({ length: 21 }, () => makeLogInput()));
    const page = await s.domain.query(callers.admin(), { page: 0, limit: 0 });
    expect({ count: page.items.length, total: page.total, page: page.page, limit: page.limit }).toEqual({ count: 20, total: 21, page: 1, limit: 20 });
  });

  it.each<[string, FilterInput & { page?: number; limit?: number }, string]>([
    ["a status code below 100", { statusCode: 99 }, "status_code"],
    ["a status code above 599", { statusCode: 600 }, "status_code"],
    ["`to` not after `from`", { from: at(0), to: at(0) }, "to"],
    ["a negative page", { page: -1 }, "page"],
    ["a page size above 100", { limit: 101 }, "limit"],
    ["a negative page size", { limit: -1 }, "limit"],
  ])("refuses %s with INVALID_ARGUMENT", async (_, bad, field) => {
    const s = await setup();
    expect(await invalidFields(s.domain.query(callers.admin(), { page: 1, limit: 10, ...bad }))).toEqual([field]);
  });
});

describe("get", () => {
  it("answers a record of one of the user's projects", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "alice-1", projectId: "pA1" }));
    expect((await s.domain.get(callers.user("alice"), "alice-1")).requestId).toBe("alice-1");
  });

  it("answers NOT_FOUND for another tenant's record", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "bobs", projectId: "pB", userId: "z" }));
    expect((await rejectionOf(s.domain.get(callers.user("alice"), "bobs"))).code).toBe(Code.NotFound);
  });

  it("answers NOT_FOUND to an API key for a record of another project", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "a-rec", projectId: "pA1" }));
    expect((await rejectionOf(s.domain.get(callers.apiKey("pB"), "a-rec"))).code).toBe(Code.NotFound);
  });

  it("answers NOT_FOUND for an unknown or empty request id", async () => {
    const s = await setup();
    expect((await rejectionOf(s.domain.get(callers.admin(), "nope"))).code).toBe(Code.NotFound);
    expect((await rejectionOf(s.domain.get(callers.admin(), ""))).code).toBe(Code.NotFound);
  });
});

describe("errors", () => {
  const statuses = [200, 404, 429, 499, 500, 503];
  async function seedStatuses(s: Setup, projectId = "pA1"): Promise<void> {
    await ingest(s, ...statuses.map((statusCode) => makeLogInput({ requestId: `s${statusCode}-${projectId}`, statusCode, projectId })));
  }

  it("lists records with status 500 or more by default, newest first", async () => {
    const s = await setup();
    await seedStatuses(s);
    const page = await s.domain.errors(callers.admin(), { minStatusCode: 0, page: 0, limit: 0, projectId: "" });
    expect({ ids: ids(page.items), total: page.total }).toEqual({ ids: ["s503-pA1", "s500-pA1"], total: 2 });
  });

  it("uses the configured lowest error status by default", async () => {
    const s = await setup({ errorMinStatus: 429 });
    await seedStatuses(s);
    const page = await s.domain.errors(callers.admin(), { minStatusCode: 0, page: 1, limit: 20, projectId: "" });
    expect(ids(page.items)).toEqual(["s503-pA1", "s500-pA1", "s499-pA1", "s429-pA1"]);
  });

  it("uses the requested lowest status over the default", async () => {
    const s = await setup();
    await seedStatuses(s);
    const page = await s.domain.errors(callers.admin(), { minStatusCode: 404, page: 1, limit: 20, projectId: "" });
    expect(ids(page.items)).toEqual(["s503-pA1", "s500-pA1", "s499-pA1", "s429-pA1", "s404-pA1"]);
  });

  it("lists only errors in the caller's scope", async () => {
    const s = await setup();
    await seedStatuses(s, "pA1");
    await seedStatuses(s, "pB");
    const page = await s.domain.errors(callers.user("bob"), { minStatusCode: 0, page: 1, limit: 20, projectId: "" });
    expect(ids(page.items)).toEqual(["s503-pB", "s500-pB"]);
  });

  it("filters errors by project and by time", async () => {
    const s = await setup();
    await seedStatuses(s, "pA1");
    await seedStatuses(s, "pA2");
    const page = await s.domain.errors(callers.user("alice"), {
      minStatusCode: 0, page: 1, limit: 20, projectId: "pA2", from: at(0), to: at(11),
    });
    expect(ids(page.items)).toEqual(["s500-pA2"]);
  });

  it.each([99, 600])("refuses a lowest status of %i with INVALID_ARGUMENT", async (minStatusCode) => {
    const s = await setup();
    expect(await invalidFields(s.domain.errors(callers.admin(), { minStatusCode, page: 1, limit: 20, projectId: "" })))
      .toEqual(["min_status_code"]);
  });
});

describe("read", () => {
  it("does not answer records stored less than the settle window (2 s) ago", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "fresh" }));
    s.clock.advance(1_998); // the record is 1 999 ms old
    expect(await s.domain.read(undefined, 0)).toEqual({ entries: [], next: undefined });
  });

  it("answers records once they are as old as the settle window", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "settled" }));
    s.clock.advance(1_999); // the record is 2 000 ms old
    expect(ids((await s.domain.read(undefined, 0)).entries)).toEqual(["settled"]);
  });

  it("uses the configured settle window", async () => {
    const s = await setup({ readSettleMs: 100 });
    await ingest(s, makeLogInput({ requestId: "a" }));
    s.clock.advance(99);
    expect(ids((await s.domain.read(undefined, 0)).entries)).toEqual(["a"]);
  });

  it("reads every record once, in ingest order, continuing from each answer's next position", async () => {
    const s = await setup({ readSettleMs: 0 });
    // Two batches at one instant (ties broken by request id), then two more records.
    await s.domain.ingestBatch(undefined, [makeLogInput({ requestId: "t-c" }), makeLogInput({ requestId: "t-a" })]);
    await s.domain.ingestBatch(undefined, [makeLogInput({ requestId: "t-b" })]);
    s.clock.advance(5);
    await ingest(s, makeLogInput({ requestId: "u-2" }), makeLogInput({ requestId: "u-1" }));
    const read: string[] = [];
    let after: Awaited<ReturnType<Setup["domain"]["read"]>>["next"];
    for (let i = 0; i < 10; i++) {
      const { entries, next } = await s.domain.read(after, 2);
      if (entries.length === 0) {
        expect(next).toEqual(after);
        break;
      }
      read.push(...ids(entries));
      const last = entries[entries.length - 1]!;
      expect(next).toEqual({ ingestedAt: last.ingestedAt, requestId: last.requestId });
      after = next;
    }
    expect(read).toEqual(["t-a", "t-b", "t-c", "u-2", "u-1"]);
  });

  it("answers the given position as next when nothing newer has settled", async () => {
    const s = await setup({ readSettleMs: 0 });
    const after = { ingestedAt: at(-1), requestId: "zzz" };
    expect(await s.domain.read(after, 10)).toEqual({ entries: [], next: after });
  });

  it("answers at most 1000 records when the limit is 0", async () => {
    const s = await setup({ readSettleMs: 0 });
    await s.domain.ingestBatch(undefined, Array.from({ length: 1000 }, () => makeLogInput()));
    await s.domain.ingestBatch(undefined, [makeLogInput()]);
    expect((await s.domain.read(undefined, 0)).entries).toHaveLength(1000);
  });

  it.each([-1, 5001])("refuses a limit of %i with INVALID_ARGUMENT", async (limit) => {
    const s = await setup();
    expect(await invalidFields(s.domain.read(undefined, limit))).toEqual(["limit"]);
  });
});

describe("tail", () => {
  /** Opens a tail as `caller`, aborted when the test ends; resolves once it is subscribed. */
  async function openTail(s: Setup, caller: Caller, filter: FilterInput = {}): Promise<StreamRecorder<LogEntry>> {
    const before = s.hub.subscribers;
    const rec = recordStream((signal) => s.domain.tail(caller, filter, signal));
    onTestFinished(() => rec.close());
    const deadline = performance.now() + 5_000;
    while (s.hub.subscribers <= before) {
      if (rec.done) throw new Error(`the tail ended before subscribing: ${String(await rec.ended())}`);
      if (performance.now() > deadline) throw new Error("the tail did not subscribe within 5 s");
      await sleep(2);
    }
    return rec;
  }
  const received = (rec: StreamRecorder<LogEntry>) => rec.received.map((r) => r.message.requestId);

  it("delivers a record ingested after subscribing within a second", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.admin());
    const started = performance.now();
    await ingest(s, makeLogInput({ requestId: "live" }));
    const got = await rec.waitFor((e) => e.requestId === "live", { timeoutMs: 1_000 });
    expect(got.at - started).toBeLessThan(1_000);
  });

  it("does not replay records ingested before subscribing", async () => {
    const s = await setup();
    await ingest(s, makeLogInput({ requestId: "before" }));
    s.clock.advance(10);
    const rec = await openTail(s, callers.admin());
    await ingest(s, makeLogInput({ requestId: "after" }));
    await rec.waitFor((e) => e.requestId === "after", { timeoutMs: 1_000 });
    expect(received(rec)).toEqual(["after"]);
  });

  it("delivers only records matching every filter", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.admin(), { method: "post", pathPrefix: "/api/v1/logs", statusCode: 201, projectId: "pB" });
    const match = { method: "POST", path: "/api/v1/logs/batch", statusCode: 201, projectId: "pB" };
    await ingest(s,
      makeLogInput({ ...match, requestId: "m-get", method: "GET" }),
      makeLogInput({ ...match, requestId: "m-path", path: "/api/v1/projects" }),
      makeLogInput({ ...match, requestId: "m-status", statusCode: 200 }),
      makeLogInput({ ...match, requestId: "m-project", projectId: "pA1" }),
      makeLogInput({ ...match, requestId: "m-yes" }),
      makeLogInput({ ...match, requestId: "m-end" }),
    );
    await rec.waitFor((e) => e.requestId === "m-end", { timeoutMs: 1_000 });
    expect(received(rec)).toEqual(["m-yes", "m-end"]);
  });

  it("delivers only records stamped inside from and to", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.admin(), { from: at(-1_000), to: at(60_000) });
    await ingest(s,
      makeLogInput({ requestId: "early", timestamp: at(-1_001) }),
      makeLogInput({ requestId: "inside", timestamp: at(-1_000) }),
      makeLogInput({ requestId: "late", timestamp: at(60_000) }),
      makeLogInput({ requestId: "end", timestamp: at(0) }),
    );
    await rec.waitFor((e) => e.requestId === "end", { timeoutMs: 1_000 });
    expect(received(rec)).toEqual(["inside", "end"]);
  });

  it("delivers to a user only records of their projects and their own requests", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.user("alice"));
    await ingest(s,
      makeLogInput({ requestId: "hers", projectId: "pA2" }),
      makeLogInput({ requestId: "bobs", projectId: "pB", userId: "z" }),
      makeLogInput({ requestId: "her-name-at-b", projectId: "pB", userId: "alice" }),
      makeLogInput({ requestId: "her-call", projectId: "", userId: "alice" }),
      makeLogInput({ requestId: "nobodys", projectId: "" }),
      makeLogInput({ requestId: "end", projectId: "pA1" }),
    );
    await rec.waitFor((e) => e.requestId === "end", { timeoutMs: 1_000 });
    expect(received(rec)).toEqual(["hers", "her-call", "end"]);
  });

  it("delivers to an API key only its project's records", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.apiKey("pB"));
    await ingest(s,
      makeLogInput({ requestId: "a", projectId: "pA1" }),
      makeLogInput({ requestId: "b", projectId: "pB" }),
      makeLogInput({ requestId: "end", projectId: "pB" }),
    );
    await rec.waitFor((e) => e.requestId === "end", { timeoutMs: 1_000 });
    expect(received(rec)).toEqual(["b", "end"]);
  });

  it("ends the tail once `to` has passed", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.admin(), { to: at(150) });
    expect(await rec.ended(2_000)).toBeUndefined();
    expect(s.hub.subscribers).toBe(0);
  });

  it("ends at once when `to` has already passed", async () => {
    const s = await setup();
    const rec = recordStream((signal) => s.domain.tail(callers.admin(), { to: at(-1) }, signal));
    onTestFinished(() => rec.close());
    expect(await rec.ended(1_000)).toBeUndefined();
  });

  // setTimeout fires at once for delays beyond 2^31-1 ms (~24.8 days).
  it("keeps a tail whose `to` is a month away open and delivering", async () => {
    const s = await setup();
    const rec = recordStream((signal) => s.domain.tail(callers.admin(), { to: at(30 * 24 * 3_600_000) }, signal));
    onTestFinished(() => rec.close());
    await sleep(100);
    await ingest(s, makeLogInput({ requestId: "within-the-month" }));
    await rec.waitFor((e) => e.requestId === "within-the-month", { timeoutMs: 1_000 });
  });

  it("refuses an invalid filter with INVALID_ARGUMENT", async () => {
    const s = await setup();
    const rec = recordStream((signal) => s.domain.tail(callers.admin(), { statusCode: 700 }, signal));
    const err = await rec.ended(1_000);
    expect(fieldViolationsOf(err).map((v) => v.field)).toEqual(["status_code"]);
  });

  it("unsubscribes when the caller aborts", async () => {
    const s = await setup();
    const rec = await openTail(s, callers.admin());
    await rec.close();
    expect(s.hub.subscribers).toBe(0);
  });
});

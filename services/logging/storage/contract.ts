import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ReadScope } from "../../../lib/project-directory.js";
import type { LogEntry, LogFilter, LogStore } from "./port.js";

/** A fresh, empty (unprepared) store and how to dispose of it. */
export interface OpenedLogStore {
  readonly store: LogStore;
  close(): Promise<void>;
}

// Every instant is fixed: the contract never reads the wall clock.
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
/** The instant `seconds` after T0 (before it when negative). */
const at = (seconds: number): Date => new Date(T0 + seconds * 1_000);
const ALL: ReadScope = { all: true };
const FAR = 10_000;

/** A complete record with every field set; ids unique unless overridden. */
export function makeLogEntry(overrides: Partial<LogEntry> = {}): LogEntry {
  return {
    requestId: `req-${randomUUID()}`, traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7",
    timestamp: at(0), method: "GET", path: "/api/v1/projects/p1", route: "/api/v1/projects/{id}", statusCode: 200,
    latency: 12.5, ip: "203.0.113.7", userAgent: "curl/8.5.0", userId: "user-1", projectId: "project-1",
    apiKeyId: "", cacheStatus: "MISS", rateLimited: false, upstreamService: "project", bytesIn: 0,
    bytesOut: 4_294_967_295, errorCode: "", ingestedAt: at(1), ...overrides,
  };
}

const idsOf = (entries: readonly LogEntry[]): string[] => entries.map((e) => e.requestId);

/**
 * The LogStore contract (services/logging/storage/port.ts), run against every
 * adapter. `open` is called before each test and must answer an empty store;
 * the contract prepares it (creating the indexes) itself.
 */
export function logStoreContract(name: string, open: () => Promise<OpenedLogStore>): void {
  describe(`LogStore contract (${name})`, () => {
    let opened: OpenedLogStore | undefined;
    let store: LogStore;
    beforeEach(async () => {
      opened = await open();
      store = opened.store;
      await store.prepare();
    });
    afterEach(async () => {
      await opened?.close();
      opened = undefined;
    });

    /** Inserts the entries (expecting all new) and answers them. */
    const seed = async (...entries: LogEntry[]): Promise<LogEntry[]> => {
      expect(await store.insert(entries)).toEqual({ inserted: entries.length, duplicates: [] });
      return entries;
    };
    const queryIds = async (scope: ReadScope, filter: LogFilter = {}) => idsOf((await store.query(scope, filter, 0, FAR)).items);

    describe("prepare", () => {
      it("can run again on a prepared store", async () => {
        await store.prepare();
        await seed(makeLogEntry());
      });
    });

    describe("insert", () => {
      it("stores every field of a record and reads it back unchanged", async () => {
        const [entry] = await seed(makeLogEntry({ rateLimited: true, cacheStatus: "HIT", apiKeyId: "key-1", errorCode: "NOT_FOUND" }));
        expect(await store.get(ALL, entry!.requestId)).toEqual(entry);
      });

      it("reports the request ids already stored as duplicates, stores the rest and keeps the stored originals", async () => {
        const [first] = await seed(makeLogEntry({ requestId: "r-a", statusCode: 200 }));
        const fresh = makeLogEntry({ requestId: "r-b" });
        const result = await store.insert([makeLogEntry({ requestId: "r-a", statusCode: 500 }), fresh]);
        expect(result).toEqual({ inserted: 1, duplicates: ["r-a"] });
        expect(await store.get(ALL, "r-a")).toEqual(first);
        expect(await store.get(ALL, "r-b")).toEqual(fresh);
      });

      it("reports a request id repeated within one insert as a duplicate and stores its first record", async () => {
        const first = makeLogEntry({ requestId: "r-twice", path: "/first" });
        const result = await store.insert([first, makeLogEntry({ requestId: "r-twice", path: "/second" })]);
        expect(result).toEqual({ inserted: 1, duplicates: ["r-twice"] });
        expect(await store.get(ALL, "r-twice")).toEqual(first);
      });
    });

    describe("query filters", () => {
      // One record per distinguishing value; each filter must pick exactly the listed ones.
      const corpus = (): LogEntry[] => [
        makeLogEntry({ requestId: "q1", userId: "u1", projectId: "p1", apiKeyId: "", statusCode: 200, method: "GET", path: "/api/v1/logs", timestamp: at(1) }),
        makeLogEntry({ requestId: "q2", userId: "u2", projectId: "p1", apiKeyId: "k1", statusCode: 404, method: "POST", path: "/api/v1/logs/batch", timestamp: at(2) }),
        makeLogEntry({ requestId: "q3", userId: "u1", projectId: "p2", apiKeyId: "k2", statusCode: 500, method: "GET", path: "/api/v1/projects", timestamp: at(3) }),
        makeLogEntry({ requestId: "q4", userId: "", projectId: "p2", apiKeyId: "k1", statusCode: 503, method: "DELETE", path: "/x/api/v1/logs", timestamp: at(4) }),
        makeLogEntry({ requestId: "q5", userId: "u3", projectId: "", apiKeyId: "", statusCode: 429, method: "GET", path: "/api", timestamp: at(5) }),
      ];

      it.each<[string, LogFilter, string[]]>([
        ["userId", { userId: "u1" }, ["q3", "q1"]],
        ["projectId", { projectId: "p2" }, ["q4", "q3"]],
        ["apiKeyId", { apiKeyId: "k1" }, ["q4", "q2"]],
        ["statusCode", { statusCode: 404 }, ["q2"]],
        ["minStatusCode (inclusive)", { minStatusCode: 429 }, ["q5", "q4", "q3"]],
        ["method", { method: "GET" }, ["q5", "q3", "q1"]],
        ["pathPrefix (at the start of the path only)", { pathPrefix: "/api/v1/logs" }, ["q2", "q1"]],
        ["from (inclusive)", { from: at(3) }, ["q5", "q4", "q3"]],
        ["to (exclusive)", { to: at(3) }, ["q2", "q1"]],
        ["from and to together", { from: at(2), to: at(4) }, ["q3", "q2"]],
        ["several filters at once (all must match)", { userId: "u1", method: "GET", minStatusCode: 500 }, ["q3"]],
      ])("filters by %s", async (_, filter, expected) => {
        await seed(...corpus());
        expect(await queryIds(ALL, filter)).toEqual(expected);
        expect((await store.query(ALL, filter, 0, FAR)).total).toBe(expected.length);
      });

      it("matches every record when no filter is given", async () => {
        await seed(...corpus());
        expect(await queryIds(ALL)).toEqual(["q5", "q4", "q3", "q2", "q1"]);
      });

      it("treats regular-expression characters in a path prefix literally", async () => {
        await seed(
          makeLogEntry({ requestId: "m1", path: "/a.b(c)/d", timestamp: at(1) }),
          makeLogEntry({ requestId: "m2", path: "/a.b(c)", timestamp: at(2) }),
          makeLogEntry({ requestId: "m3", path: "/aXb(c)/d", timestamp: at(3) }),
          makeLogEntry({ requestId: "m4", path: "/a.bc/d", timestamp: at(4) }),
          makeLogEntry({ requestId: "m5", path: "/a.b(c", timestamp: at(5) }),
        );
        expect(await queryIds(ALL, { pathPrefix: "/a.b(c)" })).toEqual(["m2", "m1"]);
        expect(await queryIds(ALL, { pathPrefix: "/a.b(c" })).toEqual(["m5", "m2", "m1"]);
      });

      it("treats *, +, ?, [, ], ^, $, | and \\ in a path prefix literally", async () => {
        const tricky = "/s*+?[x]^$|\\";
        await seed(
          makeLogEntry({ requestId: "t1", path: `${tricky}/tail`, timestamp: at(1) }),
          makeLogEntry({ requestId: "t2", path: "/sss+?x^$|\\/tail", timestamp: at(2) }),
        );
        expect(await queryIds(ALL, { pathPrefix: tricky })).toEqual(["t1"]);
      });
    });

    describe("query scope", () => {
      const corpus = (): LogEntry[] => [
        makeLogEntry({ requestId: "s1", projectId: "p1", userId: "owner", timestamp: at(1) }),
        makeLogEntry({ requestId: "s2", projectId: "p2", userId: "someone", timestamp: at(2) }),
        makeLogEntry({ requestId: "s3", projectId: "p3", userId: "owner", timestamp: at(3) }),
        makeLogEntry({ requestId: "s4", projectId: "", userId: "owner", timestamp: at(4) }),
        makeLogEntry({ requestId: "s5", projectId: "p3", userId: "someone", timestamp: at(5) }),
      ];

      it("answers every record to the all scope", async () => {
        await seed(...corpus());
        expect(await queryIds(ALL)).toEqual(["s5", "s4", "s3", "s2", "s1"]);
      });

      it("answers only the records of the scope's projects", async () => {
        await seed(...corpus());
        expect(await queryIds({ all: false, projectIds: ["p1", "p2"] })).toEqual(["s2", "s1"]);
      });

      it("answers the scope's projects plus the scope user's own records outside any project", async () => {
        await seed(...corpus());
        expect(await queryIds({ all: false, projectIds: ["p2"], userId: "owner" })).toEqual(["s4", "s2"]);
      });

      it("answers nothing to a scope without projects or user", async () => {
        await seed(...corpus());
        expect(await store.query({ all: false, projectIds: [] }, {}, 0, FAR)).toEqual({ items: [], total: 0 });
      });

      it("applies filters inside the scope", async () => {
        await seed(...corpus());
        expect(await queryIds({ all: false, projectIds: ["p3"], userId: "owner" }, { userId: "owner" })).toEqual(["s4", "s3"]);
      });
    });

    describe("query order and paging", () => {
      it("answers newest first, records stamped at the same instant by request id, highest first", async () => {
        await seed(
          makeLogEntry({ requestId: "o-b", timestamp: at(5) }),
          makeLogEntry({ requestId: "o-c", timestamp: at(1) }),
          makeLogEntry({ requestId: "o-a", timestamp: at(5) }),
          makeLogEntry({ requestId: "o-d", timestamp: at(9) }),
          makeLogEntry({ requestId: "o-e", timestamp: at(5) }),
        );
        expect(await queryIds(ALL)).toEqual(["o-d", "o-e", "o-b", "o-a", "o-c"]);
      });

      it("skips `offset` records and answers at most `limit`, with the total of all matches", async () => {
        await seed(...Array.from({ length: 7 }, (_, i) => makeLogEntry({ requestId: `pg-${i}`, timestamp: at(i) })));
        expect(await store.query(ALL, {}, 2, 3).then((r) => ({ ids: idsOf(r.items), total: r.total })))
          .toEqual({ ids: ["pg-4", "pg-3", "pg-2"], total: 7 });
      });

      it("answers an empty page, still with the total, past the last match", async () => {
        await seed(...Array.from({ length: 3 }, (_, i) => makeLogEntry({ requestId: `end-${i}`, timestamp: at(i) })));
        expect(await store.query(ALL, {}, 3, 5)).toEqual({ items: [], total: 3 });
      });

      it("counts the total of the filtered records only", async () => {
        await seed(
          makeLogEntry({ requestId: "c1", statusCode: 500, timestamp: at(1) }),
          makeLogEntry({ requestId: "c2", statusCode: 200, timestamp: at(2) }),
          makeLogEntry({ requestId: "c3", statusCode: 502, timestamp: at(3) }),
        );
        expect(await store.query(ALL, { minStatusCode: 500 }, 0, 1).then((r) => ({ ids: idsOf(r.items), total: r.total })))
          .toEqual({ ids: ["c3"], total: 2 });
      });
    });

    describe("get", () => {
      it("answers a record of one of the scope's projects", async () => {
        const [entry] = await seed(makeLogEntry({ projectId: "p1" }));
        expect(await store.get({ all: false, projectIds: ["p1"] }, entry!.requestId)).toEqual(entry);
      });

      it("answers undefined for a record outside the scope", async () => {
        const [entry] = await seed(makeLogEntry({ projectId: "p1", userId: "other" }));
        expect(await store.get({ all: false, projectIds: ["p2"], userId: "me" }, entry!.requestId)).toBeUndefined();
      });

      it("answers the scope user's own record outside any project", async () => {
        const [entry] = await seed(makeLogEntry({ projectId: "", userId: "me" }));
        expect(await store.get({ all: false, projectIds: [], userId: "me" }, entry!.requestId)).toEqual(entry);
      });

      it("answers undefined for a record naming the scope user in a project outside the scope", async () => {
        const [entry] = await seed(makeLogEntry({ projectId: "p9", userId: "me" }));
        expect(await store.get({ all: false, projectIds: [], userId: "me" }, entry!.requestId)).toBeUndefined();
      });

      it("answers undefined for an unknown request id", async () => {
        await seed(makeLogEntry());
        expect(await store.get(ALL, "never-stored")).toBeUndefined();
      });
    });

    describe("readAfter", () => {
      // Three records share one ingest instant, so positions inside it matter.
      const corpus = (): LogEntry[] => [
        makeLogEntry({ requestId: "ra-3", ingestedAt: at(2) }),
        makeLogEntry({ requestId: "ra-1", ingestedAt: at(1) }),
        makeLogEntry({ requestId: "ra-2c", ingestedAt: at(2) }),
        makeLogEntry({ requestId: "ra-2a", ingestedAt: at(2) }),
        makeLogEntry({ requestId: "ra-4", ingestedAt: at(3) }),
      ];
      const inOrder = ["ra-1", "ra-2a", "ra-2c", "ra-3", "ra-4"];

      it("answers from the first record, in ingest order with ties by request id, when no position is given", async () => {
        await seed(...corpus());
        expect(idsOf(await store.readAfter(undefined, at(100), FAR))).toEqual(inOrder);
      });

      it("answers only records after the position: at its instant with a greater request id, or later", async () => {
        await seed(...corpus());
        expect(idsOf(await store.readAfter({ ingestedAt: at(2), requestId: "ra-2c" }, at(100), FAR))).toEqual(["ra-3", "ra-4"]);
      });

      it("treats a position between stored records by its instant and request id", async () => {
        await seed(...corpus());
        expect(idsOf(await store.readAfter({ ingestedAt: at(2), requestId: "ra-2b" }, at(100), FAR))).toEqual(["ra-2c", "ra-3", "ra-4"]);
      });

      it("includes records ingested at `until` and leaves out later ones", async () => {
        await seed(...corpus());
        expect(idsOf(await store.readAfter({ ingestedAt: at(1), requestId: "ra-1" }, at(2), FAR))).toEqual(["ra-2a", "ra-2c", "ra-3"]);
      });

      it("answers at most `limit` records", async () => {
        await seed(...corpus());
        expect(idsOf(await store.readAfter(undefined, at(100), 2))).toEqual(["ra-1", "ra-2a"]);
      });

      it("reads every record exactly once when each read continues from the last record answered", async () => {
        await seed(...corpus());
        const read: string[] = [];
        let after: { ingestedAt: Date; requestId: string } | undefined;
        for (let i = 0; i < 10; i++) {
          const page = await store.readAfter(after, at(100), 2);
          if (page.length === 0) break;
          read.push(...idsOf(page));
          const last = page[page.length - 1]!;
          after = { ingestedAt: last.ingestedAt, requestId: last.requestId };
        }
        expect(read).toEqual(inOrder);
      });
    });

    describe("deleteOlderThan", () => {
      it("deletes the records stamped before the instant, answers how many, and keeps the one stamped at it", async () => {
        await seed(
          makeLogEntry({ requestId: "d-old", timestamp: at(-2) }),
          makeLogEntry({ requestId: "d-older", timestamp: at(-3) }),
          makeLogEntry({ requestId: "d-edge", timestamp: at(0) }),
          makeLogEntry({ requestId: "d-new", timestamp: at(1), ingestedAt: at(-10) }),
        );
        expect(await store.deleteOlderThan(at(0))).toBe(2);
        expect(await queryIds(ALL)).toEqual(["d-new", "d-edge"]);
        expect(await store.get(ALL, "d-old")).toBeUndefined();
      });

      it("answers 0 when no record is older", async () => {
        await seed(makeLogEntry({ timestamp: at(5) }));
        expect(await store.deleteOlderThan(at(5))).toBe(0);
      });

      it("lets a deleted record's request id be stored again", async () => {
        await seed(makeLogEntry({ requestId: "again", timestamp: at(-5) }));
        await store.deleteOlderThan(at(0));
        expect(await store.insert([makeLogEntry({ requestId: "again", timestamp: at(1) })])).toEqual({ inserted: 1, duplicates: [] });
      });
    });
  });
}

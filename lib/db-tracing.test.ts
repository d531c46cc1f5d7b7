import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { describe, expect, it, vi } from "vitest";
import { useGlobalTracing } from "../test/support/tracing.js";
import { dbCallTraced, dbErrorType, dbSpanName, sqlCollectionName, sqlOperationName, traceDbCall, type DbAttributes } from "./db-tracing.js";

// This file owns the process-global OpenTelemetry registration (vitest runs each file in a worker of its own).
const tracing = useGlobalTracing();

const select: DbAttributes = {
  "db.system.name": "postgresql", "db.namespace": "mesh", "db.operation.name": "SELECT", "db.collection.name": "users",
  "db.query.text": "SELECT * FROM users WHERE id = $1", "server.address": "db.internal", "server.port": 5432,
};

describe("sqlOperationName", () => {
  it.each([
    ["SELECT * FROM users", "SELECT"],
    ["  insert into users (id) VALUES ($1)", "INSERT"],
    ["-- why\n/* note */ WITH x AS (SELECT 1) SELECT * FROM x", "WITH"],
    ["(SELECT 1) UNION (SELECT 2)", "SELECT"],
    ["BEGIN", "BEGIN"],
    ["commit", "COMMIT"],
    ["", undefined],
    ["$1", undefined],
  ])("names %j %s", (sql, expected) => {
    expect(sqlOperationName(sql)).toBe(expected);
  });
});

describe("sqlCollectionName", () => {
  it.each([
    ["SELECT * FROM users WHERE email = $1", "users"],
    ["SELECT count(*)::int AS n FROM api_keys WHERE project_id = $1", "api_keys"],
    ["SELECT * FROM projects WHERE id = $1 FOR UPDATE", "projects"],
    ["SELECT * FROM projects WHERE id = $1 FOR UPDATE SKIP LOCKED", "projects"],
    ["INSERT INTO projects (id, name) VALUES ($1,$2)", "projects"],
    ["INSERT INTO t (k, n) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET n = t.n + 1", "t"],
    ["UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1", "refresh_tokens"],
    ["DELETE FROM key_events WHERE version < (SELECT max(version) FROM key_events)", "key_events"],
    ["SELECT * FROM public.users", "public.users"],
    ['SELECT * FROM "Odd Name"', '"Odd Name"'],
  ])("finds the one table of %j", (sql, table) => {
    expect(sqlCollectionName(sql)).toBe(table);
  });

  it.each([
    "SELECT * FROM a JOIN b ON a.id = b.id",
    "SELECT * FROM a, b",
    "SELECT * FROM a x, b y",
    "INSERT INTO a SELECT * FROM b",
    "UPDATE a SET n = b.n FROM b WHERE a.id = b.id",
    "DELETE FROM a USING b WHERE a.id = b.id",
    "SELECT * FROM unnest($1::text[])",
    "SELECT extract(epoch FROM created_at) FROM users",
    "SELECT pg_advisory_xact_lock(hashtext($1))",
    "WITH x AS (SELECT * FROM a) SELECT * FROM x",
    "BEGIN",
  ])("leaves out the table of %j", (sql) => {
    expect(sqlCollectionName(sql)).toBeUndefined();
  });
});

describe("dbSpanName", () => {
  it.each<[string, DbAttributes, string]>([
    ["operation and collection", { "db.system.name": "mongodb", "db.operation.name": "find", "db.collection.name": "logs" }, "find logs"],
    ["operation only", { "db.system.name": "redis", "db.operation.name": "GET" }, "GET"],
    ["collection only", { "db.system.name": "mongodb", "db.collection.name": "logs" }, "logs"],
    ["neither", { "db.system.name": "postgresql" }, "postgresql"],
  ])("uses %s", (_, attributes, name) => {
    expect(dbSpanName(attributes)).toBe(name);
  });
});

describe("dbErrorType", () => {
  it.each<[string, unknown, string]>([
    ["a SQLSTATE", Object.assign(new Error("duplicate key"), { code: "23505" }), "23505"],
    ["a numeric server code", Object.assign(new Error("E11000"), { code: 11000 }), "11000"],
    ["a socket errno", Object.assign(new Error("refused"), { code: "ECONNREFUSED" }), "ECONNREFUSED"],
    ["a specific error class", new TypeError("x"), "TypeError"],
    ["a plain Error", new Error("x"), "_OTHER"],
    ["a non-error", "boom", "_OTHER"],
  ])("reports %s", (_, err, type) => {
    expect(dbErrorType(err)).toBe(type);
  });
});

describe("traceDbCall", () => {
  it("makes one CLIENT span, child of the active span, named and attributed as given, ended once", async () => {
    const { parent, children } = await tracing.inSpan(() => traceDbCall(select, async () => "rows"));
    expect(children).toHaveLength(1);
    const [span] = children;
    expect(span?.name).toBe("SELECT users");
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(span?.spanContext().traceId).toBe(parent.traceId);
    expect(span?.instrumentationScope.name).toBe("mesh.db");
    expect(span?.attributes).toEqual(select);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.ended).toBe(true);
  });

  it("answers fn's own promise, so its result passes through", async () => {
    let returned: Promise<unknown> | undefined;
    let made: Promise<unknown> | undefined;
    await tracing.inSpan(async () => {
      returned = traceDbCall(select, () => (made = Promise.resolve({ rows: [1] })));
      expect(await returned).toEqual({ rows: [1] });
    });
    expect(returned).toBe(made);
  });

  it("passes fn's rejection through and marks the span ERROR with error.type and the exception", async () => {
    const failure = Object.assign(new Error("duplicate key value violates unique constraint"), { code: "23505" });
    let caught: unknown;
    const { children } = await tracing.inSpan(async () => {
      caught = await traceDbCall(select, () => Promise.reject(failure)).catch((e: unknown) => e);
    });
    expect(caught).toBe(failure);
    const [span] = children;
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: failure.message });
    expect(span?.attributes["error.type"]).toBe("23505");
    expect(span?.events.map((e) => [e.name, e.attributes?.["exception.message"]])).toEqual([["exception", failure.message]]);
  });

  it("ends the span with the error when fn throws before returning a promise", async () => {
    const failure = new RangeError("bad call");
    const { children } = await tracing.inSpan(async () => {
      expect(() => traceDbCall(select, () => { throw failure; })).toThrow(failure);
    });
    expect(children.map((s) => [s.ended, s.status.code, s.attributes["error.type"]])).toEqual([[true, SpanStatusCode.ERROR, "RangeError"]]);
  });

  it("uses the error type function it is given", async () => {
    const { children } = await tracing.inSpan(() => traceDbCall(select, () => Promise.reject(new Error("WRONGTYPE x")), () => "WRONGTYPE").catch(() => undefined));
    expect(children[0]?.attributes["error.type"]).toBe("WRONGTYPE");
  });

  it("leaves the caller's span active while fn runs", async () => {
    let active: string | undefined;
    const { parent } = await tracing.inSpan(() => traceDbCall(select, async () => { active = trace.getActiveSpan()?.spanContext().spanId; }));
    expect(active).toBe(parent.spanId);
  });

  it("calls fn directly and makes no span when no span is active", async () => {
    const fn = vi.fn(async () => "rows");
    expect(dbCallTraced()).toBe(false);
    expect(await traceDbCall(select, fn)).toBe("rows");
    expect(fn).toHaveBeenCalledOnce();
    expect(tracing.finished()).toEqual([]);
  });

  it("calls fn directly and makes no span under a span that does not record", async () => {
    const fn = vi.fn(async () => "rows");
    await tracing.inUnsampledSpan(async () => {
      expect(dbCallTraced()).toBe(false);
      expect(await traceDbCall(select, fn)).toBe("rows");
    });
    expect(fn).toHaveBeenCalledOnce();
    expect(tracing.finished()).toEqual([]);
  });

  it("dbCallTraced answers true under a recording span", async () => {
    let traced: boolean | undefined;
    await tracing.inSpan(async () => { traced = dbCallTraced(); });
    expect(traced).toBe(true);
  });
});

import { Code } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode, type SpanContext } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWithServer, uniqueSchema } from "../../test/support/integration.js";
import { dropSchema } from "../../test/support/relational.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { useGlobalTracing } from "../../test/support/tracing.js";
import { migrate } from "./migrate.js";
import { createQuery, openRelationalStore, withTransaction, type RelationalStore } from "./postgres.js";

// This file owns the process-global OpenTelemetry registration (vitest runs each file in a worker of its own).
const tracing = useGlobalTracing();

const SECRET = "s3cret-label-value";

/** Where a store's pool connects, as its connection string says. */
function connectionOf(store: RelationalStore) {
  const url = new URL(store.pool.options.connectionString ?? "");
  return { "db.namespace": url.pathname.slice(1), "server.address": url.hostname, "server.port": Number(url.port || 5432) };
}

function expectChildClientSpans(spans: readonly ReadableSpan[], parent: SpanContext) {
  for (const s of spans) {
    expect(s.kind, s.name).toBe(SpanKind.CLIENT);
    expect(s.spanContext().traceId, s.name).toBe(parent.traceId);
    expect(s.parentSpanContext?.spanId, s.name).toBe(parent.spanId);
    expect(s.instrumentationScope.name, s.name).toBe("mesh.db");
  }
}

/** Everything a span carries, as text, to prove a value never reaches it. */
const spanText = (spans: readonly ReadableSpan[]) => JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events, s.status]));

function tracingContract(name: string, open: () => Promise<RelationalStore>) {
  describe(`PostgreSQL spans (${name})`, () => {
    let store: RelationalStore;
    beforeAll(async () => {
      store = await open();
      await store.pool.query("CREATE TABLE things (id int PRIMARY KEY, label text NOT NULL)");
    });
    afterAll(() => store?.close());

    it("gives each createQuery statement a CLIENT span under the active span, with the statement's attributes", async () => {
      const q = createQuery(store.pool);
      const insert = "INSERT INTO things (id, label) VALUES ($1, $2)";
      const select = "SELECT label FROM things WHERE id = $1";
      let label: unknown;
      const { parent, children } = await tracing.inSpan(async () => {
        await q(insert, [1, SECRET]);
        label = (await q<{ label: string }>(select, [1])).rows[0]?.label;
      });
      expect(label).toBe(SECRET);
      expectChildClientSpans(children, parent);
      expect(children.map((s) => [s.name, s.attributes])).toEqual([
        ["INSERT things", { "db.system.name": "postgresql", ...connectionOf(store), "db.operation.name": "INSERT", "db.collection.name": "things", "db.query.text": insert }],
        ["SELECT things", { "db.system.name": "postgresql", ...connectionOf(store), "db.operation.name": "SELECT", "db.collection.name": "things", "db.query.text": select }],
      ]);
      expect(children.every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);
      expect(spanText(children)).not.toContain(SECRET);
    });

    it("traces BEGIN, the statements and COMMIT of a transaction, in order", async () => {
      const { parent, children } = await tracing.inSpan(() => withTransaction(store.pool, async (client) => {
        await createQuery(client)("UPDATE things SET label = $2 WHERE id = $1", [1, SECRET]);
      }));
      expectChildClientSpans(children, parent);
      expect(children.map((s) => s.name)).toEqual(["BEGIN", "UPDATE things", "COMMIT"]);
      expect(children[0]?.attributes).toEqual({ "db.system.name": "postgresql", ...connectionOf(store), "db.operation.name": "BEGIN", "db.query.text": "BEGIN" });
    });

    it("traces ROLLBACK when the transaction fails", async () => {
      const { children } = await tracing.inSpan(() => withTransaction(store.pool, async (client) => {
        await createQuery(client)("SELECT 1 FROM things WHERE id = $1", [1]);
        throw new Error("abandon");
      }).catch(() => undefined));
      expect(children.map((s) => s.name)).toEqual(["BEGIN", "SELECT things", "ROLLBACK"]);
    });

    it("marks a unique violation ERROR with its SQLSTATE, records the exception, and leaks no value", async () => {
      const q = createQuery(store.pool);
      await q("INSERT INTO things (id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING", [2, "x"]);
      let code: Code | undefined;
      const { children } = await tracing.inSpan(async () => {
        code = (await rejectionOf(q("INSERT INTO things (id, label) VALUES ($1, $2)", [2, SECRET], "thing"))).code;
      });
      expect(code).toBe(Code.AlreadyExists); // the adapter's error mapping still applies
      expect(children).toHaveLength(1);
      const [span] = children;
      expect(span?.status.code).toBe(SpanStatusCode.ERROR);
      expect(span?.attributes["error.type"]).toBe("23505");
      expect(span?.events.map((e) => e.name)).toEqual(["exception"]);
      expect(spanText(children)).not.toContain(SECRET);
    });

    it("marks a statement on a missing table ERROR with its SQLSTATE", async () => {
      const { children } = await tracing.inSpan(() => rejectionOf(createQuery(store.pool)("SELECT * FROM no_such_table WHERE id = $1", [1])));
      expect(children.map((s) => [s.name, s.status.code, s.attributes["error.type"]])).toEqual([["SELECT no_such_table", SpanStatusCode.ERROR, "42P01"]]);
    });

    it("makes no span without an active span (background work, migrations)", async () => {
      await createQuery(store.pool)("SELECT label FROM things WHERE id = $1", [1]);
      await withTransaction(store.pool, (client) => createQuery(client)("SELECT 1"));
      await migrate(store.pool, "tracing", [{ version: 1, name: "noop", sql: "SELECT 1" }]);
      expect(tracing.finished()).toEqual([]);
    });

    it("makes no span under an active span that does not record", async () => {
      await tracing.inUnsampledSpan(async () => {
        await createQuery(store.pool)("SELECT label FROM things WHERE id = $1", [1]);
        await withTransaction(store.pool, (client) => createQuery(client)("SELECT 1"));
      });
      expect(tracing.finished()).toEqual([]);
    });
  });
}

tracingContract("embedded PGlite", () => openRelationalStore({}));

describeWithServer("TEST_DATABASE_URL", "PostgreSQL spans on PostgreSQL", (url) => {
  const schema = uniqueSchema("db_tracing");
  tracingContract("PostgreSQL", async () => {
    const store = await openRelationalStore({ url, schema });
    return {
      ...store,
      async close() {
        await store.close();
        await dropSchema(url, schema);
      },
    };
  });
});

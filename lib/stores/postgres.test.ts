import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeWithServer, uniqueSchema } from "../../test/support/integration.js";
import { loadMigrations, migrate, type Migration } from "./migrate.js";
import { openRelationalStore, pgError, type RelationalStore } from "./postgres.js";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

describe("pgError", () => {
  const cases: [string, Record<string, unknown>, Code][] = [
    ["unique violation", { code: "23505" }, Code.AlreadyExists],
    ["foreign key violation", { code: "23503" }, Code.FailedPrecondition],
    ["serialization failure", { code: "40001" }, Code.Aborted],
    ["deadlock", { code: "40P01" }, Code.Aborted],
    ["connection refused", { code: "ECONNREFUSED" }, Code.Unavailable],
    ["admin shutdown", { code: "57P01" }, Code.Unavailable],
    ["connection exception class", { code: "08006" }, Code.Unavailable],
    ["pool connect timeout", { message: "timeout exceeded when trying to connect" }, Code.Unavailable],
    ["syntax error", { code: "42601", message: "syntax error at or near" }, Code.Internal],
  ];
  it.each(cases)("maps %s", (_name, err, code) => {
    const mapped = pgError(Object.assign(new Error(String(err.message ?? "x")), err));
    expect(mapped.code).toBe(code);
    expect(mapped.rawMessage).not.toContain("syntax");
  });

  it("reports UNAVAILABLE, promptly, when the server cannot be reached", async () => {
    const store = await openRelationalStore({ url: "postgres://nobody@127.0.0.1:1/none" });
    const err = await store.pool.query("SELECT 1").catch((e: unknown) => pgError(e));
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    await store.close();
  });

  it("passes a ConnectError through unchanged", () => {
    const e = new ConnectError("x", Code.NotFound);
    expect(pgError(e)).toBe(e);
  });
});

describe("loadMigrations", () => {
  it("rejects numbering with a gap", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mig-"));
    await writeFile(join(dir, "001_a.sql"), "SELECT 1");
    await writeFile(join(dir, "003_c.sql"), "SELECT 1");
    await expect(loadMigrations(dir)).rejects.toThrow(/without gaps/);
  });

  it("rejects a file not named NNN_name.sql", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mig-"));
    await writeFile(join(dir, "init.sql"), "SELECT 1");
    await expect(loadMigrations(dir)).rejects.toThrow(/NNN_name/);
  });
});

const migrations: Migration[] = [
  { version: 1, name: "things", sql: "CREATE TABLE things (id int PRIMARY KEY)" },
  { version: 2, name: "more", sql: "ALTER TABLE things ADD COLUMN label text" },
];

function migrateContract(name: string, open: () => Promise<RelationalStore>) {
  describe(`migrate (${name})`, () => {
    let store: RelationalStore;
    beforeAll(async () => { store = await open(); });
    afterAll(() => store?.close());

    it("applies pending migrations once, in order", async () => {
      expect(await migrate(store.pool, "demo", migrations)).toEqual([1, 2]);
      expect(await migrate(store.pool, "demo", migrations)).toEqual([]);
      await store.pool.query("INSERT INTO things (id, label) VALUES (1, 'x')");
    });

    it("rolls back a failing migration entirely and names it", async () => {
      const bad: Migration = { version: 1, name: "broken", sql: "CREATE TABLE half (id int); SELECT * FROM missing_table" };
      await expect(migrate(store.pool, "broken", [bad])).rejects.toThrow(/broken 1_broken failed/);
      const { rows } = await store.pool.query("SELECT to_regclass('half') AS t");
      expect(rows[0].t).toBeNull();
    });
  });
}

migrateContract("embedded PGlite", () => openRelationalStore({}));

describeWithServer("TEST_DATABASE_URL", "relational store on PostgreSQL", (url) => {
  const schema = uniqueSchema("lib");
  migrateContract("PostgreSQL", async () => {
    const store = await openRelationalStore({ url, schema });
    return {
      ...store,
      async close() {
        await store.close();
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(`DROP SCHEMA "${schema}" CASCADE`);
        await c.end();
      },
    };
  });

  it("applies migrations once when replicas start together", async () => {
    const s = uniqueSchema("lib_race");
    const a = await openRelationalStore({ url, schema: s });
    const b = await openRelationalStore({ url, schema: s });
    try {
      const [ra, rb] = await Promise.all([migrate(a.pool, "race", migrations), migrate(b.pool, "race", migrations)]);
      expect([...ra, ...rb].sort()).toEqual([1, 2]);
    } finally {
      await a.close();
      await b.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA "${s}" CASCADE`);
      await c.end();
    }
  });

});

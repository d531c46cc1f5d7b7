import { join } from "node:path";
import pg from "pg";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore, quoteIdent } from "../../../lib/stores/postgres.js";
import { describeWithServer, uniqueSchema } from "../../../test/support/integration.js";
import { projectStoreContract } from "./contract.js";
import { createPostgresProjectStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

/** Drops `schema` and everything in it, through a connection of its own. */
async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

// A real PostgreSQL server; each opened store gets a schema of its own, dropped on close.
describeWithServer("TEST_DATABASE_URL", "ProjectStore on PostgreSQL", (url) => {
  projectStoreContract("PostgreSQL", async () => {
    const schema = uniqueSchema("project");
    const db = await openRelationalStore({ url, schema });
    const close = async () => {
      try {
        await dropSchema(url, schema);
      } finally {
        await db.close();
      }
    };
    try {
      await migrate(db.pool, "project", await loadMigrations(migrationsDir));
    } catch (err) {
      await close();
      throw err;
    }
    return { store: createPostgresProjectStore(db.pool), close };
  });
});

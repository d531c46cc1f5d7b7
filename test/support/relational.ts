import pg from "pg";
import { loadMigrations, migrate } from "../../lib/stores/migrate.js";
import { openRelationalStore, quoteIdent } from "../../lib/stores/postgres.js";
import { uniqueSchema } from "./integration.js";

/** Drops `schema` and everything in it, through a connection of its own. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * A migrated relational store for a test: in-memory PGlite without `url`;
 * on the PostgreSQL at `url`, a schema of its own, dropped on close.
 */
export async function openMigratedStore(opts: { url?: string | undefined; component: string; migrationsDir: string }): Promise<{ pool: pg.Pool; close(): Promise<void> }> {
  const schema = opts.url ? uniqueSchema(opts.component) : undefined;
  const db = await openRelationalStore({ url: opts.url, schema });
  const close = async () => {
    try {
      if (opts.url && schema) await dropSchema(opts.url, schema);
    } finally {
      await db.close();
    }
  };
  try {
    await migrate(db.pool, opts.component, await loadMigrations(opts.migrationsDir));
  } catch (err) {
    await close();
    throw err;
  }
  return { pool: db.pool, close };
}

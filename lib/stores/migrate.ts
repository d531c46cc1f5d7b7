import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type pg from "pg";

/** One versioned migration: files named `NNN_description.sql`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Reads `NNN_name.sql` files from `dir`, ordered by version; rejects gaps and duplicates. */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file name must be NNN_name.sql: ${file}`);
    migrations.push({ version: Number(match[1]), name: match[2]!, sql: await readFile(join(dir, file), "utf8") });
  }
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1..n without gaps: ${m.version}_${m.name}`);
  });
  return migrations;
}

/**
 * Applies pending migrations, each in its own transaction, while holding a
 * session advisory lock so replicas starting together apply each exactly once.
 * Returns the versions applied now.
 */
export async function migrate(pool: pg.Pool, component: string, migrations: readonly Migration[]): Promise<number[]> {
  const lock = await pool.connect();
  try {
    await lock.query("SELECT pg_advisory_lock(hashtext($1))", [`mesh.migrate.${component}`]);
    await lock.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      component text NOT NULL, version integer NOT NULL, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))`);
    const { rows } = await lock.query<{ version: number }>(
      "SELECT version FROM schema_migrations WHERE component = $1", [component]);
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await runMigration(lock, component, m);
      applied.push(m.version);
    }
    return applied;
  } finally {
    await lock.query("SELECT pg_advisory_unlock(hashtext($1))", [`mesh.migrate.${component}`]).catch(() => undefined);
    lock.release();
  }
}

async function runMigration(client: pg.PoolClient, component: string, m: Migration): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query(m.sql);
    await client.query("INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)",
      [component, m.version, m.name]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw new Error(`migration ${component} ${m.version}_${m.name} failed: ${(err as Error).message}`, { cause: err });
  }
}


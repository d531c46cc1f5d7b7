import { join } from "node:path";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore } from "../../../lib/stores/postgres.js";
import { projectStoreContract } from "./contract.js";
import { createPostgresProjectStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

// The embedded store: in-memory PGlite behind the same `pg` adapter as production.
projectStoreContract("embedded PGlite", async () => {
  const db = await openRelationalStore({});
  try {
    await migrate(db.pool, "project", await loadMigrations(migrationsDir));
  } catch (err) {
    await db.close();
    throw err;
  }
  return { store: createPostgresProjectStore(db.pool), close: () => db.close() };
});

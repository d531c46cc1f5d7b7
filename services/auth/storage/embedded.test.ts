import { join } from "node:path";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore } from "../../../lib/stores/postgres.js";
import { authStoreContract } from "./contract.js";
import { createPostgresAuthStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

// The embedded store: in-memory PGlite behind the same `pg` adapter as production.
authStoreContract("embedded PGlite", async () => {
  const db = await openRelationalStore({});
  try {
    await migrate(db.pool, "auth", await loadMigrations(migrationsDir));
  } catch (err) {
    await db.close();
    throw err;
  }
  return { store: createPostgresAuthStore(db.pool), close: () => db.close() };
});

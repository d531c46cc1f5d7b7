import { join } from "node:path";
import { openMigratedStore } from "../../../test/support/relational.js";
import { authStoreContract } from "./contract.js";
import { createPostgresAuthStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

// The embedded store: in-memory PGlite behind the same `pg` adapter as production.
authStoreContract("embedded PGlite", async () => {
  const db = await openMigratedStore({ component: "auth", migrationsDir });
  return { store: createPostgresAuthStore(db.pool), close: db.close };
});

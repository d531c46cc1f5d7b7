import { join } from "node:path";
import { openMigratedStore } from "../../../test/support/relational.js";
import { projectStoreContract } from "./contract.js";
import { createPostgresProjectStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

// The embedded store: in-memory PGlite behind the same `pg` adapter as production.
projectStoreContract("embedded PGlite", async () => {
  const db = await openMigratedStore({ component: "project", migrationsDir });
  return { store: createPostgresProjectStore(db.pool), close: db.close };
});

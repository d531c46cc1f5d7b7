import { join } from "node:path";
import { describeWithServer } from "../../../test/support/integration.js";
import { openMigratedStore } from "../../../test/support/relational.js";
import { authStoreContract } from "./contract.js";
import { createPostgresAuthStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

// A real PostgreSQL server; each opened store gets a schema of its own, dropped on close.
describeWithServer("TEST_DATABASE_URL", "AuthStore on PostgreSQL", (url) => {
  authStoreContract("PostgreSQL", async () => {
    const db = await openMigratedStore({ url, component: "auth", migrationsDir });
    return { store: createPostgresAuthStore(db.pool), close: db.close };
  });
});

import { join } from "node:path";
import { describeWithServer } from "../../../test/support/integration.js";
import { openMigratedStore } from "../../../test/support/relational.js";
import { projectStoreContract } from "./contract.js";
import { createPostgresProjectStore } from "./postgres.js";

const migrationsDir = join(import.meta.dirname, "migrations");

// A real PostgreSQL server; each opened store gets a schema of its own, dropped on close.
describeWithServer("TEST_DATABASE_URL", "ProjectStore on PostgreSQL", (url) => {
  projectStoreContract("PostgreSQL", async () => {
    const db = await openMigratedStore({ url, component: "project", migrationsDir });
    return { store: createPostgresProjectStore(db.pool), close: db.close };
  });
});

import { MongoClient } from "mongodb";
import { afterAll } from "vitest";
import { LOGS_COLLECTION } from "../../../lib/request-log.js";
import { openDocumentDb } from "../../../lib/stores/open-documents.js";
import { describeWithServer, uniqueSchema } from "../../../test/support/integration.js";
import { logStoreContract } from "./contract.js";
import { createDocumentLogStore } from "./documents.js";

// A real server (FerretDB in CI): one database of this run's own, emptied
// before each test and dropped afterwards.
describeWithServer("TEST_MONGO_URL", "LogStore on MongoDB", (url) => {
  const dbName = uniqueSchema("logs");

  logStoreContract("MongoDB", async () => {
    const db = await openDocumentDb({ url, dbName });
    try {
      await db.collection(LOGS_COLLECTION).deleteMany({});
    } catch (err) {
      await db.close();
      throw err;
    }
    return { store: createDocumentLogStore(db), close: () => db.close() };
  });

  afterAll(async () => {
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.db(dbName).dropDatabase();
    } finally {
      await client.close();
    }
  });
});

import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { logStoreContract } from "./contract.js";
import { createDocumentLogStore } from "./documents.js";

// The embedded document store (mingo), the default when MONGO_URL is unset.
logStoreContract("embedded", async () => {
  const db = createEmbeddedDocumentDb();
  return { store: createDocumentLogStore(db), close: () => db.close() };
});

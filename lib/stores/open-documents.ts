import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { DocumentDb } from "./documents.js";
import { createEmbeddedDocumentDb } from "./embedded-documents.js";
import { createMongoDocumentDb } from "./mongo.js";

export interface DocumentDbOptions {
  /** `mongodb://…`; unset → the in-process embedded store. */
  readonly url?: string | undefined;
  /** The database to use on the server (the embedded store ignores it). */
  readonly dbName: string;
  readonly logger?: Logger | undefined;
}

/**
 * Opens the document store chosen by URL (DESIGN.md "State"), announcing the
 * choice in the log. With a URL the server must answer a ping first: an
 * unreachable server at startup throws UNAVAILABLE (after ~2 s) rather than
 * leaving a service that fails every request. Once open, the store rides out
 * outages by itself (operations fail with UNAVAILABLE meanwhile).
 */
export async function openDocumentDb(opts: DocumentDbOptions): Promise<DocumentDb> {
  if (!opts.url) {
    opts.logger?.info({ store: "embedded" }, "document store: embedded (set MONGO_URL to use MongoDB)");
    return createEmbeddedDocumentDb();
  }
  const db = createMongoDocumentDb(opts.url, opts.dbName, opts.logger);
  try {
    await db.ping();
  } catch (err) {
    await db.close().catch(() => undefined);
    throw new ConnectError(`MongoDB at ${redactUrl(opts.url)} is not reachable`, Code.Unavailable, undefined, undefined, err);
  }
  opts.logger?.info({ store: "mongodb", db: opts.dbName }, "document store: MongoDB");
  return db;
}

/** The URL without its credentials, for messages and logs. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/\?.*$/, "");
}

import type { DocumentDb, Doc, Filter } from "../../../lib/stores/documents.js";
import type { ReadScope } from "../../../lib/project-directory.js";
import { LOGS_COLLECTION } from "../../../lib/request-log.js";
import type { LogEntry, LogFilter, LogStore } from "./port.js";


type LogDoc = Doc & LogEntry;

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function scopeFilter(scope: ReadScope): Filter | undefined {
  if (scope.all) return undefined;
  const inProjects = { projectId: { $in: [...scope.projectIds] } };
  // A user also sees their own requests made outside any project.
  return scope.userId ? { $or: [inProjects, { projectId: "", userId: scope.userId }] } : inProjects;
}

/** The MongoDB filter for a scope and query filters. */
export function logFilter(scope: ReadScope, f: LogFilter): Filter {
  const and: Filter[] = [];
  const s = scopeFilter(scope);
  if (s) and.push(s);
  if (f.userId) and.push({ userId: f.userId });
  if (f.projectId) and.push({ projectId: f.projectId });
  if (f.apiKeyId) and.push({ apiKeyId: f.apiKeyId });
  if (f.statusCode) and.push({ statusCode: f.statusCode });
  if (f.minStatusCode) and.push({ statusCode: { $gte: f.minStatusCode } });
  if (f.method) and.push({ method: f.method });
  if (f.pathPrefix) and.push({ path: { $regex: `^${escapeRegex(f.pathPrefix)}` } });
  if (f.from) and.push({ timestamp: { $gte: f.from } });
  if (f.to) and.push({ timestamp: { $lt: f.to } });
  return and.length === 0 ? {} : and.length === 1 ? and[0]! : { $and: and };
}

function toEntry(d: LogDoc): LogEntry {
  const { _id, ...entry } = d;
  void _id;
  return entry as LogEntry;
}

/** The log store over a DocumentDb (MongoDB, FerretDB or the embedded store). */
export function createDocumentLogStore(db: DocumentDb): LogStore {
  const logs = db.collection<LogDoc>(LOGS_COLLECTION);
  return {
    async prepare() {
      await logs.ensureIndex({ timestamp: -1, _id: -1 }, { name: "by_time" });
      await logs.ensureIndex({ projectId: 1, timestamp: -1 }, { name: "by_project_time" });
      await logs.ensureIndex({ userId: 1, timestamp: -1 }, { name: "by_user_time" });
      await logs.ensureIndex({ statusCode: 1, timestamp: -1 }, { name: "by_status_time" });
      await logs.ensureIndex({ ingestedAt: 1, _id: 1 }, { name: "by_ingest" });
    },
    async insert(entries) {
      const result = await logs.insertMany(entries.map((e) => ({ ...e, _id: e.requestId })));
      return { inserted: result.inserted, duplicates: result.duplicates.map((i) => entries[i]!.requestId) };
    },
    async query(scope, filter, offset, limit) {
      const where = logFilter(scope, filter);
      const [items, total] = await Promise.all([
        logs.find(where, { sort: { timestamp: -1, _id: -1 }, skip: offset, limit }),
        logs.count(where),
      ]);
      return { items: items.map(toEntry), total };
    },
    async get(scope, requestId) {
      const s = scopeFilter(scope);
      const doc = await logs.findOne(s ? { $and: [{ _id: requestId }, s] } : { _id: requestId });
      return doc && toEntry(doc);
    },
    async readAfter(after, until, limit) {
      const position = after
        ? { $or: [{ ingestedAt: { $gt: after.ingestedAt } }, { ingestedAt: after.ingestedAt, _id: { $gt: after.requestId } }] }
        : {};
      const docs = await logs.find({ $and: [position, { ingestedAt: { $lte: until } }] }, { sort: { ingestedAt: 1, _id: 1 }, limit });
      return docs.map(toEntry);
    },
    deleteOlderThan: (before) => logs.deleteMany({ timestamp: { $lt: before } }),
  };
}

import { Code, ConnectError } from "@connectrpc/connect";
import { createViolations } from "../../../lib/errors.js";
import type { Notifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import { pageOf } from "../../../lib/paging.js";
import { readScopeOf, scopeHasProject, type ProjectDirectory, type ReadScope } from "../../../lib/project-directory.js";
import type { LogEntry, LogFilter, LogPosition, LogStore } from "../storage/port.js";
import { toEntry, type LogInput } from "./records.js";
import type { createTailHub } from "./tail-hub.js";

export const MAX_BATCH = 1000;

export interface LoggingDomainDeps {
  readonly store: LogStore;
  readonly directory: ProjectDirectory;
  readonly tail: ReturnType<typeof createTailHub>;
  /** Woken after each local ingest so tails deliver at once. */
  readonly notifier: Notifier;
  readonly now: () => Date;
  /** Lowest status ListErrorLogs counts by default. */
  readonly errorMinStatus: number;
  /**
   * ReadLogs answers only records stored at least this long ago, so a
   * record another replica stamped a moment earlier but commits later is
   * not skipped by a reader that has moved past it; default 2 s.
   */
  readonly readSettleMs?: number;
}

/** Query filters as the RPCs take them (zero values mean "any"). */
export interface FilterInput {
  userId?: string;
  projectId?: string;
  apiKeyId?: string;
  statusCode?: number;
  method?: string;
  pathPrefix?: string;
  from?: Date | undefined;
  to?: Date | undefined;
}

function filterOf(v: ReturnType<typeof createViolations>, f: FilterInput): LogFilter {
  if (f.statusCode && (f.statusCode < 100 || f.statusCode > 599)) v.add("status_code", "must be an HTTP status between 100 and 599");
  if (f.from && f.to && f.from.getTime() >= f.to.getTime()) v.add("to", "must be after from");
  return {
    userId: f.userId || undefined, projectId: f.projectId || undefined, apiKeyId: f.apiKeyId || undefined,
    statusCode: f.statusCode || undefined, method: f.method ? f.method.toUpperCase() : undefined,
    pathPrefix: f.pathPrefix || undefined, from: f.from, to: f.to,
  };
}

/** Whether an entry is inside the scope and matches the filter (the tail's in-memory twin of the store's query). */
export function matches(scope: ReadScope, f: LogFilter, e: LogEntry): boolean {
  if (!scope.all && !scope.projectIds.includes(e.projectId) && !(scope.userId && !e.projectId && e.userId === scope.userId)) return false;
  return (!f.userId || e.userId === f.userId) && (!f.projectId || e.projectId === f.projectId)
    && (!f.apiKeyId || e.apiKeyId === f.apiKeyId) && (!f.statusCode || e.statusCode === f.statusCode)
    && (!f.minStatusCode || e.statusCode >= f.minStatusCode) && (!f.method || e.method === f.method)
    && (!f.pathPrefix || e.path.startsWith(f.pathPrefix))
    && (!f.from || e.timestamp.getTime() >= f.from.getTime()) && (!f.to || e.timestamp.getTime() < f.to.getTime());
}

/** Request logs: idempotent ingest, scoped queries and live tails. */
/** One rejected record of a batch. */
export interface BatchError {
  index: number;
  requestId: string;
  message: string;
}

export function createLoggingDomain(deps: LoggingDomainDeps) {
  const { store, now } = deps;

  /**
   * Who a record may be attributed to: an API key's records get its
   * project; a user's records must name one of their projects, or none, and
   * then they are the user's own requests.
   */
  async function stamp(caller: Caller | undefined, entries: LogEntry[]): Promise<LogEntry[]> {
    if (!caller || caller.isAdmin) return entries;
    if (caller.projectId) return entries.map((e) => ({ ...e, projectId: caller.projectId! }));
    const scope = await readScopeOf(caller, deps.directory);
    for (const e of entries) {
      if (e.projectId && !scopeHasProject(scope, e.projectId)) throw new ConnectError(`project ${e.projectId} not found`, Code.NotFound);
    }
    // A record outside any project is the caller's own request: it must not
    // land among another user's own requests.
    return entries.map((e) => (e.projectId ? e : { ...e, userId: caller.userId }));
  }

  async function write(entries: LogEntry[]): Promise<{ inserted: number; duplicates: number }> {
    const result = await store.insert(entries);
    if (result.inserted > 0) deps.notifier.notify();
    return { inserted: result.inserted, duplicates: result.duplicates.length };
  }

  /** Validates a batch without storing it: one error per invalid record, sorted by index. */
  function checkBatch(inputs: readonly LogInput[]): { entries: LogEntry[]; errors: BatchError[] } {
    if (inputs.length === 0 || inputs.length > MAX_BATCH) {
      const v = createViolations();
      v.add("logs", `must hold 1 to ${MAX_BATCH} records`);
      v.throwIfAny();
    }
    const at = now();
    const errors: BatchError[] = [];
    const entries = inputs.map((input, index) => {
      const v = createViolations();
      const entry = toEntry(v, "", input, at);
      if (v.list.length > 0) errors.push({ index, requestId: input.requestId, message: v.list.map((x) => `${x.field}: ${x.description}`).join("; ") });
      return entry;
    });
    const seen = new Set<string>();
    entries.forEach((e, index) => {
      if (seen.has(e.requestId)) errors.push({ index, requestId: e.requestId, message: "request_id: repeats an earlier record of this batch" });
      seen.add(e.requestId);
    });
    return { entries, errors: errors.sort((a, b) => a.index - b.index) };
  }

  /** Stores entries `checkBatch` accepted; `ingested` counts duplicates too (they are stored). */
  async function storeBatch(caller: Caller | undefined, entries: LogEntry[]): Promise<{ ingested: number; duplicates: number }> {
    const result = await write(await stamp(caller, entries));
    return { ingested: result.inserted + result.duplicates, duplicates: result.duplicates };
  }

  async function list(caller: Caller, filter: LogFilter, page: number, limit: number, v: ReturnType<typeof createViolations>) {
    const paging = pageOf(v, page, limit);
    v.throwIfAny();
    const scope = await readScopeOf(caller, deps.directory);
    const result = await store.query(scope, filter, paging.offset, paging.limit);
    return { ...result, page: paging.page, limit: paging.limit };
  }

  return {
    /** One record; `caller` undefined for the mesh's own (internal) ingest. */
    async ingestOne(caller: Caller | undefined, input: LogInput): Promise<void> {
      const v = createViolations();
      const entry = toEntry(v, "log.", input, now());
      v.throwIfAny();
      await write(await stamp(caller, [entry]));
    },

    /** All or nothing: any invalid record → nothing stored and one error per invalid record. */
    async ingestBatch(caller: Caller | undefined, inputs: readonly LogInput[]) {
      const checked = checkBatch(inputs);
      if (checked.errors.length > 0) return { ingested: 0, duplicates: 0, errors: checked.errors };
      return { ...(await storeBatch(caller, checked.entries)), errors: checked.errors };
    },

    /**
     * The two halves of `ingestBatch`, for callers that validate one batch
     * while an earlier one is being stored: `checkBatch` validates synchronously
     * (errors sorted by index; entries usable only when there are none).
     */
    checkBatch,
    storeBatch,

    async query(caller: Caller, f: FilterInput & { page: number; limit: number }) {
      const v = createViolations();
      return list(caller, filterOf(v, f), f.page, f.limit, v);
    },

    async errors(caller: Caller, f: { minStatusCode: number; page: number; limit: number; from?: Date | undefined; to?: Date | undefined; projectId: string }) {
      const v = createViolations();
      if (f.minStatusCode && (f.minStatusCode < 100 || f.minStatusCode > 599)) v.add("min_status_code", "must be an HTTP status between 100 and 599");
      const filter = { ...filterOf(v, { projectId: f.projectId, from: f.from, to: f.to }), minStatusCode: f.minStatusCode || deps.errorMinStatus };
      return list(caller, filter, f.page, f.limit, v);
    },

    /** One record in scope; NOT_FOUND otherwise (another tenant's record included). */
    async get(caller: Caller, requestId: string): Promise<LogEntry> {
      const entry = requestId ? await store.get(await readScopeOf(caller, deps.directory), requestId) : undefined;
      if (!entry) throw new ConnectError("log record not found", Code.NotFound);
      return entry;
    },

    /** Internal: records in ingest order after `after`, at most `limit` (default 1000, at most 5000). */
    async read(after: LogPosition | undefined, limit: number): Promise<{ entries: LogEntry[]; next: LogPosition | undefined }> {
      const v = createViolations();
      if (limit < 0 || limit > 5000) v.add("limit", "must be between 1 and 5000");
      v.throwIfAny();
      const until = new Date(now().getTime() - (deps.readSettleMs ?? 2_000));
      const entries = await store.readAfter(after, until, limit || 1000);
      const last = entries[entries.length - 1];
      return { entries, next: last ? { ingestedAt: last.ingestedAt, requestId: last.requestId } : after };
    },

    /** New records in scope matching the filter, until `signal` aborts or `to` passes. */
    async *tail(caller: Caller, f: FilterInput, signal: AbortSignal): AsyncGenerator<LogEntry> {
      const v = createViolations();
      const filter = filterOf(v, f);
      v.throwIfAny();
      const scope = await readScopeOf(caller, deps.directory);
      const ctrl = new AbortController();
      const stop = () => ctrl.abort();
      signal.addEventListener("abort", stop);
      let timer: NodeJS.Timeout | undefined;
      // Timers hold at most 2^31-1 ms (~24.8 days): wait in steps until `to`.
      const stopIn = (ms: number) => {
        const started = Date.now();
        timer = ms <= 0 ? (stop(), undefined) : setTimeout(() => stopIn(ms - (Date.now() - started)), Math.min(ms, 2 ** 31 - 1));
      };
      if (filter.to) stopIn(filter.to.getTime() - now().getTime());
      try {
        yield* deps.tail.subscribe((e) => matches(scope, filter, e), ctrl.signal);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", stop);
      }
    },
  };
}

export type LoggingDomain = ReturnType<typeof createLoggingDomain>;

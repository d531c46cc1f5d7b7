import { Code, ConnectError } from "@connectrpc/connect";
import { createViolations } from "../../../lib/errors.js";
import { followFeed } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import { parsePathTemplate, PathTemplateError } from "../../../lib/path-template.js";
import { ROUTE_SERVICES, type Page, type ProjectStore, type RouteEventRecord, type RouteRecord } from "../storage/port.js";
import { isUuid, ownedProject } from "./access.js";
import { maskOf, pageOf } from "./inputs.js";
import type { DomainDeps } from "./projects.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const MAX_RATE_LIMIT = 1_000_000;
const MAX_CACHE_TTL = 86_400;
const EDITABLE = ["method", "path", "service", "rate_limit", "cache_ttl_seconds", "active"] as const;

/** The editable fields of a route config. */
export interface RouteFields {
  method: string;
  path: string;
  service: string;
  rateLimit?: number | undefined;
  cacheTtlSeconds?: number | undefined;
  active: boolean;
}

/** What WatchRoutes delivers: a snapshot of every active config, or one change. */
export type RouteWatchEvent = { kind: "snapshot"; version: bigint; routes: RouteRecord[] } | RouteEventRecord;

function checkFields(v: ReturnType<typeof createViolations>, f: RouteFields, prefix: string): RouteFields {
  const method = f.method.trim().toUpperCase();
  if (!METHODS.includes(method)) v.add(`${prefix}method`, `must be one of ${METHODS.join(", ")}`);
  try {
    parsePathTemplate(f.path);
  } catch (err) {
    if (!(err instanceof PathTemplateError)) throw err;
    v.add(`${prefix}path`, `is not a valid path template: ${err.message}`);
  }
  if (!(ROUTE_SERVICES as readonly string[]).includes(f.service)) v.add(`${prefix}service`, `must be one of ${ROUTE_SERVICES.join(", ")}`);
  if (f.rateLimit !== undefined && (f.rateLimit < 1 || f.rateLimit > MAX_RATE_LIMIT)) {
    v.add(`${prefix}rate_limit`, `must be between 1 and ${MAX_RATE_LIMIT} requests per minute`);
  }
  if (f.cacheTtlSeconds !== undefined && (f.cacheTtlSeconds < 0 || f.cacheTtlSeconds > MAX_CACHE_TTL)) {
    v.add(`${prefix}cache_ttl_seconds`, `must be between 0 and ${MAX_CACHE_TTL}`);
  }
  return { ...f, method };
}

function duplicate(err: unknown): never {
  if (ConnectError.from(err).code === Code.AlreadyExists) {
    throw new ConnectError("the project already has a route config for this method and path", Code.AlreadyExists);
  }
  throw err;
}

/** Appends the watcher-visible effect of a change from `before` to `after`. */
async function announce(tx: ProjectStore, before: RouteRecord | undefined, after: RouteRecord | undefined, at: Date): Promise<boolean> {
  if (after?.active) {
    await tx.appendRouteEvent({ kind: "upserted", routeId: after.id, route: after, occurredAt: at });
    return true;
  }
  if (before?.active) {
    await tx.appendRouteEvent({ kind: "deleted", routeId: before.id, occurredAt: at });
    return true;
  }
  return false;
}

/** Route configs: per-project overrides, and the feed gateways follow. */
export function createRoutesDomain(deps: DomainDeps) {
  const { store, now } = deps;

  async function ownedRoute(caller: Caller, id: string): Promise<RouteRecord> {
    const route = isUuid(id) ? await store.getRoute(id) : undefined;
    if (route) {
      const project = await ownedProject(store, caller, route.projectId).catch(() => undefined);
      if (project) return route;
    }
    throw new ConnectError("route config not found", Code.NotFound);
  }

  /**
   * Runs `write` in one transaction with the route locked, so concurrent
   * changes apply one after the other, each to the current row; announces
   * the change to watchers only if it happened.
   */
  async function change(id: string | undefined, write: (tx: ProjectStore, current: RouteRecord | undefined) => Promise<RouteRecord | undefined>) {
    let changed = false;
    const result = await store.transaction(async (tx) => {
      const current = id === undefined ? undefined : await tx.lockRoute(id);
      if (id !== undefined && !current) throw new ConnectError("route config not found", Code.NotFound);
      const after = await write(tx, current);
      changed = await announce(tx, current, after, now());
      return after;
    });
    if (changed) deps.events.notify();
    return result;
  }

  return {
    async create(caller: Caller, projectId: string, input: RouteFields): Promise<RouteRecord> {
      const v = createViolations();
      const fields = checkFields(v, input, "");
      v.throwIfAny();
      await ownedProject(store, caller, projectId);
      const at = now();
      const route: RouteRecord = { ...fields, id: deps.newId(), projectId, createdAt: at, updatedAt: at };
      await change(undefined, async (tx) => {
        await tx.insertRoute(route).catch(duplicate);
        return route;
      });
      return route;
    },

    async list(caller: Caller, projectId: string, q: { page: number; limit: number }): Promise<Page<RouteRecord> & { page: number; limit: number }> {
      const v = createViolations();
      const paging = pageOf(v, q.page, q.limit);
      v.throwIfAny();
      await ownedProject(store, caller, projectId);
      return { ...(await store.listRoutes(projectId, paging.offset, paging.limit)), page: paging.page, limit: paging.limit };
    },

    get: ownedRoute,

    /**
     * Changes the fields named in the mask; an optional field named but unset
     * is cleared. Without a mask, the fields sent with a non-default value
     * change (AIP-134).
     */
    async update(caller: Caller, id: string, input: Partial<RouteFields>, maskPaths: readonly string[] | undefined): Promise<RouteRecord> {
      const v = createViolations();
      const mask = maskOf(v, maskPaths, EDITABLE);
      v.throwIfAny();
      await ownedRoute(caller, id);
      const sent = (path: (typeof EDITABLE)[number], key: keyof RouteFields) => (mask.size > 0
        ? mask.has(path)
        : input[key] !== undefined && input[key] !== "" && input[key] !== false);
      const updated = await change(id, (tx, before) => {
        const current = before!;
        const merged = checkFields(v, {
          method: sent("method", "method") ? input.method ?? "" : current.method,
          path: sent("path", "path") ? input.path ?? "" : current.path,
          service: sent("service", "service") ? input.service ?? "" : current.service,
          rateLimit: sent("rate_limit", "rateLimit") ? input.rateLimit : current.rateLimit,
          cacheTtlSeconds: sent("cache_ttl_seconds", "cacheTtlSeconds") ? input.cacheTtlSeconds : current.cacheTtlSeconds,
          active: sent("active", "active") ? input.active ?? false : current.active,
        }, "route.");
        v.throwIfAny();
        return tx.updateRoute({ ...current, ...merged, updatedAt: now() }).catch(duplicate);
      });
      return updated!;
    },

    async delete(caller: Caller, id: string): Promise<void> {
      await ownedRoute(caller, id);
      await change(id, async (tx) => {
        await tx.deleteRoute(id);
        return undefined;
      });
    },

    listActive: () => store.snapshotActiveRoutes(),

    /**
     * A snapshot (when `after` is 0, unknown, or older than the kept
     * changes), then every change after it, until `signal` aborts.
     */
    async *watch(after: bigint, signal: AbortSignal): AsyncGenerator<RouteWatchEvent> {
      const range = await store.routeEventRange();
      let cursor = after;
      const canReplay = after > 0n && after <= range.last && range.first !== undefined && range.first <= after + 1n;
      if (!canReplay) {
        const snapshot = await store.snapshotActiveRoutes();
        yield { kind: "snapshot", version: snapshot.version, routes: snapshot.routes };
        cursor = snapshot.version;
      }
      yield* followFeed({
        after: cursor, signal, notifier: deps.events, read: (a, limit) => store.listRouteEvents(a, limit), versionOf: (e) => e.version,
      });
    },
  };
}

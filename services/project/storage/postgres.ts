import pg from "pg";
import { createQuery, pgError, withTransaction, type Queryable } from "../../../lib/stores/postgres.js";
import type { ApiKeyRecord, KeyEventRecord, Page, ProjectRecord, ProjectStore, RouteEventRecord, RouteRecord } from "./port.js";

interface ProjectRow { id: string; owner_id: string; name: string; description: string; created_at: Date; updated_at: Date }
interface KeyRow {
  id: string; project_id: string; key_hash: string; prefix: string; name: string; expires_at: Date | null;
  created_at: Date; last_used_at: Date | null; revoked_at: Date | null; owner_id?: string;
}
interface RouteRow {
  id: string; project_id: string; method: string; path: string; service: string; rate_limit: number | null;
  cache_ttl_seconds: number | null; active: boolean; created_at: Date; updated_at: Date;
}
interface KeyEventRow { version: string; kind: KeyEventRecord["kind"]; key_id: string; key_hash: string; project_id: string; occurred_at: Date }
interface RouteEventRow { version: string; kind: "upserted" | "deleted"; route_id: string; route: RouteJson | null; occurred_at: Date }
type RouteJson = Omit<RouteRecord, "createdAt" | "updatedAt"> & { createdAt: string; updatedAt: string };

const toProject = (r: ProjectRow): ProjectRecord => ({
  id: r.id, ownerId: r.owner_id, name: r.name, description: r.description, createdAt: r.created_at, updatedAt: r.updated_at,
});
const toKey = (r: KeyRow): ApiKeyRecord => ({
  id: r.id, projectId: r.project_id, keyHash: r.key_hash, prefix: r.prefix, name: r.name, expiresAt: r.expires_at ?? undefined,
  createdAt: r.created_at, lastUsedAt: r.last_used_at ?? undefined, revokedAt: r.revoked_at ?? undefined,
});
const toRoute = (r: RouteRow): RouteRecord => ({
  id: r.id, projectId: r.project_id, method: r.method, path: r.path, service: r.service, rateLimit: r.rate_limit ?? undefined,
  cacheTtlSeconds: r.cache_ttl_seconds ?? undefined, active: r.active, createdAt: r.created_at, updatedAt: r.updated_at,
});
const routeFromJson = (j: RouteJson): RouteRecord => ({ ...j, createdAt: new Date(j.createdAt), updatedAt: new Date(j.updatedAt) });
const toKeyEvent = (r: KeyEventRow): KeyEventRecord => ({
  version: BigInt(r.version), kind: r.kind, keyId: r.key_id, keyHash: r.key_hash, projectId: r.project_id, occurredAt: r.occurred_at,
});
const toRouteEvent = (r: RouteEventRow): RouteEventRecord => (r.kind === "upserted" && r.route
  ? { version: BigInt(r.version), kind: "upserted", routeId: r.route_id, route: routeFromJson(r.route), occurredAt: r.occurred_at }
  : { version: BigInt(r.version), kind: "deleted", routeId: r.route_id, occurredAt: r.occurred_at });

const sortColumns = { created_at: "created_at", updated_at: "updated_at", name: "name" } as const;

/** The project store over `pg`: the same SQL on PostgreSQL and the embedded PGlite. */
export function createPostgresProjectStore(pool: pg.Pool): ProjectStore {
  return bind(pool, pool);
}

function bind(pool: pg.Pool, db: Queryable): ProjectStore {
  const q = createQuery(db);
  const inTx = db !== pool;
  const page = async <R extends pg.QueryResultRow, T>(sql: string, countSql: string, params: unknown[], map: (r: R) => T,
    offset: number, limit: number): Promise<Page<T>> => {
    const [rows, count] = [await q<R>(`${sql} OFFSET $${params.length + 1} LIMIT $${params.length + 2}`, [...params, offset, limit]),
      await q<{ n: number }>(countSql, params)];
    return { items: rows.rows.map(map), total: count.rows[0]?.n ?? 0 };
  };
  // Readers page events by version, so versions must become visible in
  // order: the lock, held until commit, serializes appends to one log.
  const appendLocked = async (log: string, sql: string, params: unknown[]): Promise<bigint> => {
    if (!inTx) throw new Error(`${log} events must be appended inside a transaction`);
    await q("SELECT pg_advisory_xact_lock(hashtext($1))", [`mesh.project.${log}`]);
    const { rows } = await q<{ version: string }>(sql, params);
    return BigInt(rows[0]!.version);
  };

  const store: ProjectStore = {
    transaction: (fn) => (inTx ? fn(store) : withTransaction(pool, (client) => fn(bind(pool, client)))),

    async insertProject(p) {
      await q(`INSERT INTO projects (id, owner_id, name, description, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6)`,
        [p.id, p.ownerId, p.name, p.description, p.createdAt, p.updatedAt], "project");
    },
    async getProject(id) {
      const { rows } = await q<ProjectRow>("SELECT * FROM projects WHERE id = $1", [id]);
      return rows[0] && toProject(rows[0]);
    },
    listProjects({ ownerId, sort, order, offset, limit }) {
      const where = ownerId === undefined ? "" : "WHERE owner_id = $1";
      const dir = order === "asc" ? "ASC" : "DESC";
      return page<ProjectRow, ProjectRecord>(`SELECT * FROM projects ${where} ORDER BY ${sortColumns[sort]} ${dir}, id ${dir}`,
        `SELECT count(*)::int AS n FROM projects ${where}`, ownerId === undefined ? [] : [ownerId], toProject, offset, limit);
    },
    async updateProject(id, patch, now) {
      const { rows } = await q<ProjectRow>(`UPDATE projects SET name = COALESCE($2, name), description = COALESCE($3, description),
        updated_at = $4 WHERE id = $1 RETURNING *`, [id, patch.name ?? null, patch.description ?? null, now], "project");
      return rows[0] && toProject(rows[0]);
    },
    async lockProject(id) {
      const { rows } = await q<ProjectRow>("SELECT * FROM projects WHERE id = $1 FOR UPDATE", [id]);
      return rows[0] && toProject(rows[0]);
    },
    async deleteProject(id) {
      return ((await q("DELETE FROM projects WHERE id = $1", [id])).rowCount ?? 0) > 0;
    },

    async insertApiKey(k) {
      await q(`INSERT INTO api_keys (id, project_id, key_hash, prefix, name, expires_at, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
        [k.id, k.projectId, k.keyHash, k.prefix, k.name, k.expiresAt ?? null, k.createdAt], "API key");
    },
    async getApiKey(id) {
      const { rows } = await q<KeyRow>("SELECT * FROM api_keys WHERE id = $1", [id]);
      return rows[0] && toKey(rows[0]);
    },
    listApiKeys(projectId, offset, limit) {
      return page<KeyRow, ApiKeyRecord>("SELECT * FROM api_keys WHERE project_id = $1 ORDER BY created_at DESC, id DESC",
        "SELECT count(*)::int AS n FROM api_keys WHERE project_id = $1", [projectId], toKey, offset, limit);
    },
    async unrevokedKeysOfProject(projectId) {
      const { rows } = await q<KeyRow>("SELECT * FROM api_keys WHERE project_id = $1 AND revoked_at IS NULL ORDER BY created_at", [projectId]);
      return rows.map(toKey);
    },
    async revokeApiKey(id, now) {
      const updated = await q<KeyRow>("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING *", [id, now]);
      if (updated.rows[0]) return { key: toKey(updated.rows[0]), revokedNow: true };
      const existing = await store.getApiKey(id);
      return existing && { key: existing, revokedNow: false };
    },
    async findApiKeyByHash(keyHash) {
      const { rows } = await q<KeyRow & { owner_id: string }>(`SELECT k.*, p.owner_id FROM api_keys k
        JOIN projects p ON p.id = k.project_id WHERE k.key_hash = $1`, [keyHash]);
      return rows[0] && { ...toKey(rows[0]), ownerId: rows[0].owner_id };
    },
    async touchApiKeys(uses) {
      if (uses.size === 0) return;
      await q(`UPDATE api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, u.at), u.at)
        FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`, [[...uses.keys()], [...uses.values()]]);
    },

    appendKeyEvent(e) {
      return appendLocked("key_events", `INSERT INTO key_events (kind, key_id, key_hash, project_id, occurred_at)
        VALUES ($1,$2,$3,$4,$5) RETURNING version`, [e.kind, e.keyId, e.keyHash, e.projectId, e.occurredAt]);
    },
    async listKeyEvents(after, limit) {
      const { rows } = await q<KeyEventRow>("SELECT * FROM key_events WHERE version > $1 ORDER BY version LIMIT $2", [after.toString(), limit]);
      return rows.map(toKeyEvent);
    },
    async lastKeyEventVersion() {
      const { rows } = await q<{ v: string | null }>("SELECT max(version)::text AS v FROM key_events");
      return BigInt(rows[0]?.v ?? 0);
    },

    async insertRoute(r) {
      await q(`INSERT INTO route_configs (id, project_id, method, path, service, rate_limit, cache_ttl_seconds, active, created_at, updated_at)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`, [r.id, r.projectId, r.method, r.path, r.service, r.rateLimit ?? null,
        r.cacheTtlSeconds ?? null, r.active, r.createdAt, r.updatedAt], "route config");
    },
    async getRoute(id) {
      const { rows } = await q<RouteRow>("SELECT * FROM route_configs WHERE id = $1", [id]);
      return rows[0] && toRoute(rows[0]);
    },
    async lockRoute(id) {
      const { rows } = await q<RouteRow>("SELECT * FROM route_configs WHERE id = $1 FOR UPDATE", [id]);
      return rows[0] && toRoute(rows[0]);
    },
    listRoutes(projectId, offset, limit) {
      return page<RouteRow, RouteRecord>("SELECT * FROM route_configs WHERE project_id = $1 ORDER BY created_at, id",
        "SELECT count(*)::int AS n FROM route_configs WHERE project_id = $1", [projectId], toRoute, offset, limit);
    },
    async updateRoute(r) {
      const { rows } = await q<RouteRow>(`UPDATE route_configs SET method = $2, path = $3, service = $4, rate_limit = $5,
        cache_ttl_seconds = $6, active = $7, updated_at = $8 WHERE id = $1 RETURNING *`,
      [r.id, r.method, r.path, r.service, r.rateLimit ?? null, r.cacheTtlSeconds ?? null, r.active, r.updatedAt], "route config");
      return rows[0] && toRoute(rows[0]);
    },
    async deleteRoute(id) {
      const { rows } = await q<RouteRow>("DELETE FROM route_configs WHERE id = $1 RETURNING *", [id]);
      return rows[0] && toRoute(rows[0]);
    },
    async activeRoutesOfProject(projectId) {
      const { rows } = await q<RouteRow>("SELECT * FROM route_configs WHERE project_id = $1 AND active ORDER BY created_at, id", [projectId]);
      return rows.map(toRoute);
    },

    appendRouteEvent(e) {
      const route = e.kind === "upserted" ? JSON.stringify(e.route) : null;
      return appendLocked("route_events", `INSERT INTO route_events (kind, route_id, route, occurred_at)
        VALUES ($1,$2,$3,$4) RETURNING version`, [e.kind, e.routeId, route, e.occurredAt]);
    },
    async listRouteEvents(after, limit) {
      const { rows } = await q<RouteEventRow>("SELECT * FROM route_events WHERE version > $1 ORDER BY version LIMIT $2", [after.toString(), limit]);
      return rows.map(toRouteEvent);
    },
    async routeEventRange() {
      const { rows } = await q<{ first: string | null; last: string | null }>(
        "SELECT min(version)::text AS first, max(version)::text AS last FROM route_events");
      return { first: rows[0]?.first ? BigInt(rows[0].first) : undefined, last: BigInt(rows[0]?.last ?? 0) };
    },
    async snapshotActiveRoutes() {
      const read = async (tx: Queryable) => {
        const query = createQuery(tx);
        const routes = await query<RouteRow>("SELECT * FROM route_configs WHERE active ORDER BY created_at, id");
        const version = await query<{ v: string | null }>("SELECT max(version)::text AS v FROM route_events");
        return { routes: routes.rows.map(toRoute), version: BigInt(version.rows[0]?.v ?? 0) };
      };
      if (inTx) return read(db);
      return withTransaction(pool, async (client) => {
        await createQuery(client)("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
        return read(client);
      }).catch((err: unknown) => { throw pgError(err); });
    },

    async pruneEvents(before) {
      // The newest event of each log is kept so a snapshot's version stays
      // comparable with what watchers hold.
      const keys = await q("DELETE FROM key_events WHERE occurred_at < $1 AND version < (SELECT max(version) FROM key_events)", [before]);
      const routes = await q("DELETE FROM route_events WHERE occurred_at < $1 AND version < (SELECT max(version) FROM route_events)", [before]);
      return (keys.rowCount ?? 0) + (routes.rowCount ?? 0);
    },
  };
  return store;
}

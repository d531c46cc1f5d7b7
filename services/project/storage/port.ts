export interface ProjectRecord {
  readonly id: string;
  /** User id of the owner (as forwarded by the gateway). */
  readonly ownerId: string;
  readonly name: string;
  readonly description: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ApiKeyRecord {
  readonly id: string;
  readonly projectId: string;
  /** Hex SHA-256 of the plaintext key. */
  readonly keyHash: string;
  readonly prefix: string;
  readonly name: string;
  readonly expiresAt?: Date | undefined;
  readonly createdAt: Date;
  readonly lastUsedAt?: Date | undefined;
  readonly revokedAt?: Date | undefined;
}

export const ROUTE_SERVICES = ["auth", "project", "logging", "analytics"] as const;

export interface RouteRecord {
  readonly id: string;
  readonly projectId: string;
  readonly method: string;
  readonly path: string;
  readonly service: string;
  readonly rateLimit?: number | undefined;
  readonly cacheTtlSeconds?: number | undefined;
  readonly active: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type KeyEventKind = "revoked" | "project_deleted";

export interface KeyEventRecord {
  readonly version: bigint;
  readonly kind: KeyEventKind;
  readonly keyId: string;
  readonly keyHash: string;
  readonly projectId: string;
  readonly occurredAt: Date;
}

export type RouteEventRecord =
  | { readonly version: bigint; readonly kind: "upserted"; readonly routeId: string; readonly route: RouteRecord; readonly occurredAt: Date }
  | { readonly version: bigint; readonly kind: "deleted"; readonly routeId: string; readonly occurredAt: Date };

type WithoutVersion<T> = T extends unknown ? Omit<T, "version"> : never;

export interface Page<T> {
  readonly items: T[];
  /** Count across all pages. */
  readonly total: number;
}

export type ProjectSort = "created_at" | "updated_at" | "name";

/**
 * Storage port of the project service. Methods throw ConnectError:
 * ALREADY_EXISTS on a unique clash (project name per owner, key hash, route
 * per project+method+path), UNAVAILABLE when the database is down, INTERNAL
 * otherwise. Lookups answer `undefined` when absent. Event appends must run
 * inside `transaction`, with the change they announce.
 */
export interface ProjectStore {
  transaction<T>(fn: (tx: ProjectStore) => Promise<T>): Promise<T>;

  insertProject(p: ProjectRecord): Promise<void>;
  getProject(id: string): Promise<ProjectRecord | undefined>;
  /** Projects of `ownerId` (all when undefined), sorted, with a stable tie-break on id. */
  listProjects(q: { ownerId?: string | undefined; sort: ProjectSort; order: "asc" | "desc"; offset: number; limit: number }): Promise<Page<ProjectRecord>>;
  updateProject(id: string, patch: { name?: string; description?: string }, now: Date): Promise<ProjectRecord | undefined>;
  /** Inside a transaction: the project, locked against concurrent change until commit. */
  lockProject(id: string): Promise<ProjectRecord | undefined>;
  /** Deletes the project with its keys and route configs; false when absent. */
  deleteProject(id: string): Promise<boolean>;

  /** FAILED_PRECONDITION when the project does not exist (any longer). */
  insertApiKey(k: ApiKeyRecord): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  /** Keys of a project, newest first. */
  listApiKeys(projectId: string, offset: number, limit: number): Promise<Page<ApiKeyRecord>>;
  /** Keys of a project not yet revoked. */
  unrevokedKeysOfProject(projectId: string): Promise<ApiKeyRecord[]>;
  /** Sets revoked_at if unset; answers the key and whether this call revoked it. */
  revokeApiKey(id: string, now: Date): Promise<{ key: ApiKeyRecord; revokedNow: boolean } | undefined>;
  /** The key with this hash and its project's owner. */
  findApiKeyByHash(keyHash: string): Promise<(ApiKeyRecord & { readonly ownerId: string }) | undefined>;
  /** Records last uses in one statement; never moves last_used_at backwards. */
  touchApiKeys(uses: ReadonlyMap<string, Date>): Promise<void>;

  appendKeyEvent(e: Omit<KeyEventRecord, "version">): Promise<bigint>;
  listKeyEvents(after: bigint, limit: number): Promise<KeyEventRecord[]>;
  /** Version of the newest key event, 0 when none. */
  lastKeyEventVersion(): Promise<bigint>;

  insertRoute(r: RouteRecord): Promise<void>;
  getRoute(id: string): Promise<RouteRecord | undefined>;
  /** Inside a transaction: the route config, locked against concurrent change until commit. */
  lockRoute(id: string): Promise<RouteRecord | undefined>;
  /** Route configs of a project, oldest first. */
  listRoutes(projectId: string, offset: number, limit: number): Promise<Page<RouteRecord>>;
  /** Replaces the editable fields (method, path, service, limits, active). */
  updateRoute(r: RouteRecord): Promise<RouteRecord | undefined>;
  deleteRoute(id: string): Promise<RouteRecord | undefined>;
  activeRoutesOfProject(projectId: string): Promise<RouteRecord[]>;

  appendRouteEvent(e: WithoutVersion<RouteEventRecord>): Promise<bigint>;
  listRouteEvents(after: bigint, limit: number): Promise<RouteEventRecord[]>;
  /** Versions of the oldest kept and the newest route event; `first` undefined and `last` 0 when none. */
  routeEventRange(): Promise<{ first: bigint | undefined; last: bigint }>;
  /** Every active route config and the event version they are current as of, read consistently. */
  snapshotActiveRoutes(): Promise<{ routes: RouteRecord[]; version: bigint }>;

  /** Forgets key and route events that occurred before `before`; answers how many. */
  pruneEvents(before: Date): Promise<number>;
}

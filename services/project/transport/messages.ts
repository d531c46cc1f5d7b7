import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ApiKeySchema, KeyEventKind, KeyEventSchema, ProjectSchema, RouteConfigSchema, RouteEventKind, RouteEventSchema,
  type ApiKey, type KeyEvent, type Project, type RouteConfig, type RouteEvent,
} from "../../../gen/mesh/project/v1/project_pb.js";
import type { RouteWatchEvent } from "../domain/routes.js";
import type { ApiKeyRecord, KeyEventRecord, ProjectRecord, RouteRecord } from "../storage/port.js";

const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);

export function projectMessage(p: ProjectRecord): Project {
  return create(ProjectSchema, { id: p.id, name: p.name, description: p.description, createdAt: ts(p.createdAt), updatedAt: ts(p.updatedAt) });
}

/** A key as listed: never its hash. */
export function apiKeyMessage(k: ApiKeyRecord): ApiKey {
  return create(ApiKeySchema, {
    id: k.id, projectId: k.projectId, name: k.name, prefix: k.prefix, createdAt: ts(k.createdAt),
    lastUsedAt: ts(k.lastUsedAt), expiresAt: ts(k.expiresAt), revokedAt: ts(k.revokedAt),
  });
}

export function routeMessage(r: RouteRecord): RouteConfig {
  return create(RouteConfigSchema, {
    id: r.id, projectId: r.projectId, method: r.method, path: r.path, service: r.service, rateLimit: r.rateLimit,
    cacheTtlSeconds: r.cacheTtlSeconds, active: r.active, createdAt: ts(r.createdAt), updatedAt: ts(r.updatedAt),
  });
}

export function keyEventMessage(e: KeyEventRecord): KeyEvent {
  return create(KeyEventSchema, {
    version: e.version, kind: e.kind === "revoked" ? KeyEventKind.REVOKED : KeyEventKind.PROJECT_DELETED,
    keyId: e.keyId, keyHash: e.keyHash, projectId: e.projectId, occurredAt: ts(e.occurredAt),
  });
}

export function routeEventMessage(e: RouteWatchEvent): RouteEvent {
  switch (e.kind) {
    case "snapshot":
      return create(RouteEventSchema, { version: e.version, kind: RouteEventKind.SNAPSHOT, routes: e.routes.map(routeMessage) });
    case "upserted":
      return create(RouteEventSchema, { version: e.version, kind: RouteEventKind.UPSERTED, route: routeMessage(e.route) });
    case "deleted":
      return create(RouteEventSchema, { version: e.version, kind: RouteEventKind.DELETED, routeId: e.routeId });
  }
}

import { createClient, type Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import { RouteEventKind, type RouteConfig } from "../../gen/mesh/project/v1/project_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { watch } from "../watch.js";

/** What a project's route config changes for its own traffic on one route. */
export interface RouteOverrides {
  /** Requests per minute. */
  readonly rateLimit?: number;
  /** Response cache TTL in seconds (0: not cached). */
  readonly cacheTtlSeconds?: number;
}

export interface RouteConfigs {
  /** The overrides a project set for `verb` + route template, if any. */
  lookup(projectId: string, verb: string, template: string): RouteOverrides | undefined;
  close(): void;
}

const keyOf = (projectId: string, verb: string, template: string) => `${projectId}|${verb.toUpperCase()} ${template}`;

/**
 * The active route configs, followed live from the project service's
 * WatchRoutes (a snapshot, then each change) and applied without restart.
 * While the project service is down the last good set keeps serving; the
 * watch resumes after the last version it applied. A config is looked up by
 * the project a request is attributed to (its API key's), so no tenant can
 * change how another tenant's traffic is limited or cached.
 */
export function watchRouteConfigs(transport: Transport, logger: Logger): RouteConfigs {
  const client = createClient(ProjectService, transport);
  const byId = new Map<string, RouteConfig>();
  let index = new Map<string, RouteConfig>();
  const reindex = () => { index = new Map([...byId.values()].map((r) => [keyOf(r.projectId, r.method, r.path), r])); };
  const stop = new AbortController();
  void watch({
    name: "route configs", logger, signal: stop.signal,
    open: (after, signal) => client.watchRoutes({ afterVersion: after }, { signal }),
    versionOf: (m) => m.event?.version,
    apply: (m) => {
      const e = m.event;
      if (!e) return;
      if (e.kind === RouteEventKind.SNAPSHOT) {
        byId.clear();
        for (const r of e.routes) byId.set(r.id, r);
      } else if (e.kind === RouteEventKind.UPSERTED && e.route) {
        if (e.route.active) byId.set(e.route.id, e.route);
        else byId.delete(e.route.id);
      } else if (e.kind === RouteEventKind.DELETED) {
        byId.delete(e.routeId);
      }
      reindex();
    },
  });
  return {
    lookup(projectId, verb, template) {
      const r = index.get(keyOf(projectId, verb, template));
      return r && { ...(r.rateLimit !== undefined ? { rateLimit: r.rateLimit } : {}), ...(r.cacheTtlSeconds !== undefined ? { cacheTtlSeconds: r.cacheTtlSeconds } : {}) };
    },
    close: () => stop.abort(),
  };
}

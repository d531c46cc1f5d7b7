import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ProjectService } from "../../../gen/mesh/project/v1/project_pb.js";
import { callerFrom } from "../../../lib/identity.js";
import type { createApiKeysDomain } from "../domain/api-keys.js";
import type { createProjectsDomain } from "../domain/projects.js";
import type { createRoutesDomain } from "../domain/routes.js";
import { apiKeyMessage, keyEventMessage, projectMessage, routeEventMessage, routeMessage } from "./messages.js";

export interface ProjectDomains {
  readonly projects: ReturnType<typeof createProjectsDomain>;
  readonly keys: ReturnType<typeof createApiKeysDomain>;
  readonly routes: ReturnType<typeof createRoutesDomain>;
}

/** gRPC surface of the project service: the caller from the gateway's identity metadata, messages ↔ domain. */
export function createProjectServiceImpl({ projects, keys, routes }: ProjectDomains): ServiceImpl<typeof ProjectService> {
  return {
    async createProject(req, ctx) {
      return { project: projectMessage(await projects.create(callerFrom(ctx.requestHeader), req)) };
    },
    async listProjects(req, ctx) {
      const page = await projects.list(callerFrom(ctx.requestHeader), req);
      return { projects: page.items.map(projectMessage), total: page.total, page: page.page, limit: page.limit };
    },
    async getProject(req, ctx) {
      return { project: projectMessage(await projects.get(callerFrom(ctx.requestHeader), req.id)) };
    },
    async replaceProject(req, ctx) {
      return { project: projectMessage(await projects.replace(callerFrom(ctx.requestHeader), req.id, req)) };
    },
    async updateProject(req, ctx) {
      const input = { name: req.project?.name ?? "", description: req.project?.description ?? "" };
      return { project: projectMessage(await projects.update(callerFrom(ctx.requestHeader), req.id, input, req.updateMask?.paths)) };
    },
    async deleteProject(req, ctx) {
      await projects.delete(callerFrom(ctx.requestHeader), req.id);
      return {};
    },

    async createApiKey(req, ctx) {
      const k = await keys.create(callerFrom(ctx.requestHeader), req.projectId, {
        name: req.name, expiresAt: req.expiresAt ? timestampDate(req.expiresAt) : undefined,
      });
      const m = apiKeyMessage(k);
      return { id: k.id, key: k.key, name: k.name, prefix: k.prefix, createdAt: m.createdAt, expiresAt: m.expiresAt };
    },
    async listApiKeys(req, ctx) {
      const page = await keys.list(callerFrom(ctx.requestHeader), req.projectId, req);
      return { keys: page.items.map(apiKeyMessage), total: page.total, page: page.page, limit: page.limit };
    },
    async revokeApiKey(req, ctx) {
      await keys.revoke(callerFrom(ctx.requestHeader), req.id);
      return {};
    },
    async verifyApiKey(req) {
      const key = await keys.verify(req.keyHash);
      if (!key) return { valid: false };
      return { valid: true, key: { ...key, expiresAt: key.expiresAt ? timestampFromDate(key.expiresAt) : undefined } };
    },
    async *watchKeyEvents(req, ctx) {
      for await (const e of keys.watch(req.afterVersion, ctx.signal)) yield { event: keyEventMessage(e) };
    },

    async createRoute(req, ctx) {
      const route = await routes.create(callerFrom(ctx.requestHeader), req.projectId, {
        method: req.method, path: req.path, service: req.service, rateLimit: req.rateLimit,
        cacheTtlSeconds: req.cacheTtlSeconds, active: req.active ?? true,
      });
      return { route: routeMessage(route) };
    },
    async listRoutes(req, ctx) {
      const page = await routes.list(callerFrom(ctx.requestHeader), req.projectId, req);
      return { routes: page.items.map(routeMessage), total: page.total, page: page.page, limit: page.limit };
    },
    async getRoute(req, ctx) {
      return { route: routeMessage(await routes.get(callerFrom(ctx.requestHeader), req.id)) };
    },
    async updateRoute(req, ctx) {
      const r = req.route;
      const input = r ? { method: r.method, path: r.path, service: r.service, rateLimit: r.rateLimit, cacheTtlSeconds: r.cacheTtlSeconds, active: r.active } : {};
      return { route: routeMessage(await routes.update(callerFrom(ctx.requestHeader), req.id, input, req.updateMask?.paths)) };
    },
    async deleteRoute(req, ctx) {
      await routes.delete(callerFrom(ctx.requestHeader), req.id);
      return {};
    },
    async listActiveRoutes() {
      const { routes: active, version } = await routes.listActive();
      return { routes: active.map(routeMessage), version };
    },
    async *watchRoutes(req, ctx) {
      for await (const e of routes.watch(req.afterVersion, ctx.signal)) yield { event: routeEventMessage(e) };
    },
  };
}

import { Code, ConnectError } from "@connectrpc/connect";
import { createViolations } from "../../../lib/errors.js";
import type { Notifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import type { Page, ProjectRecord, ProjectSort, ProjectStore } from "../storage/port.js";
import { ownedProject } from "./access.js";
import { maskOf, nameOf, pageOf } from "./inputs.js";

export interface DomainDeps {
  readonly store: ProjectStore;
  readonly now: () => Date;
  readonly newId: () => string;
  /** Woken after a change that appended key or route events. */
  readonly events: Notifier;
}

const sorts: Record<string, ProjectSort> = { createdAt: "created_at", updatedAt: "updated_at", name: "name" };
const MAX_DESCRIPTION = 1000;

function checkDescription(v: ReturnType<typeof createViolations>, description: string, field = "description"): string {
  if (description.length > MAX_DESCRIPTION) v.add(field, `must be at most ${MAX_DESCRIPTION} characters`);
  return description;
}

/** Renames a unique clash into the message a user understands. */
function nameTaken(err: unknown): never {
  if (ConnectError.from(err).code === Code.AlreadyExists) throw new ConnectError("a project with this name already exists", Code.AlreadyExists);
  throw err;
}

/** Projects: CRUD scoped to their owner (admins see all). */
export function createProjectsDomain(deps: DomainDeps) {
  const { store, now } = deps;
  return {
    /** Creates a project owned by the caller. ALREADY_EXISTS when the caller has one of that name. */
    async create(caller: Caller, input: { name: string; description: string }): Promise<ProjectRecord> {
      const v = createViolations();
      const name = nameOf(v, "name", input.name);
      const description = checkDescription(v, input.description);
      v.throwIfAny();
      const at = now();
      const project = { id: deps.newId(), ownerId: caller.userId, name, description, createdAt: at, updatedAt: at };
      await store.insertProject(project).catch(nameTaken);
      return project;
    },

    /** The caller's projects (all of them for an admin), one page at a time. */
    async list(caller: Caller, q: { page: number; limit: number; sort: string; order: string }): Promise<Page<ProjectRecord> & { page: number; limit: number }> {
      const v = createViolations();
      const paging = pageOf(v, q.page, q.limit);
      const sort = sorts[q.sort || "createdAt"];
      if (!sort) v.add("sort", "must be one of createdAt, updatedAt, name");
      const order = q.order || "desc";
      if (order !== "asc" && order !== "desc") v.add("order", "must be asc or desc");
      v.throwIfAny();
      const result = await store.listProjects({
        ownerId: caller.isAdmin ? undefined : caller.userId, sort: sort!, order: order as "asc" | "desc",
        offset: paging.offset, limit: paging.limit,
      });
      return { ...result, page: paging.page, limit: paging.limit };
    },

    get: (caller: Caller, id: string) => ownedProject(store, caller, id),

    /** PUT: sets every editable field; a description left out becomes empty. */
    async replace(caller: Caller, id: string, input: { name: string; description: string }): Promise<ProjectRecord> {
      const v = createViolations();
      const name = nameOf(v, "name", input.name);
      const description = checkDescription(v, input.description);
      v.throwIfAny();
      await ownedProject(store, caller, id);
      const updated = await store.updateProject(id, { name, description }, now()).catch(nameTaken);
      if (!updated) throw new ConnectError("project not found", Code.NotFound);
      return updated;
    },

    /**
     * PATCH: changes only the fields named in the mask. Without a mask, the
     * fields sent with a non-empty value change (AIP-134).
     */
    async update(caller: Caller, id: string, input: { name: string; description: string }, maskPaths: readonly string[] | undefined): Promise<ProjectRecord> {
      const v = createViolations();
      const mask = maskOf(v, maskPaths, ["name", "description"]);
      if (mask.size === 0) {
        if (input.name) mask.add("name");
        if (input.description) mask.add("description");
      }
      const patch: { name?: string; description?: string } = {};
      if (mask.has("name")) patch.name = nameOf(v, "project.name", input.name);
      if (mask.has("description")) patch.description = checkDescription(v, input.description, "project.description");
      v.throwIfAny();
      const project = await ownedProject(store, caller, id);
      if (mask.size === 0) return project;
      const updated = await store.updateProject(id, patch, now()).catch(nameTaken);
      if (!updated) throw new ConnectError("project not found", Code.NotFound);
      return updated;
    },

    /**
     * Deletes a project with its keys and route configs, in one transaction
     * that also announces each key (PROJECT_DELETED) and each active route
     * (DELETED) to watchers.
     */
    async delete(caller: Caller, id: string): Promise<void> {
      await ownedProject(store, caller, id);
      await store.transaction(async (tx) => {
        // Locked first: a key created concurrently either commits before
        // (and is announced below) or fails on the deleted project.
        if (!(await tx.lockProject(id))) throw new ConnectError("project not found", Code.NotFound);
        const at = now();
        for (const key of await tx.unrevokedKeysOfProject(id)) {
          await tx.appendKeyEvent({ kind: "project_deleted", keyId: key.id, keyHash: key.keyHash, projectId: id, occurredAt: at });
        }
        for (const route of await tx.activeRoutesOfProject(id)) {
          await tx.appendRouteEvent({ kind: "deleted", routeId: route.id, occurredAt: at });
        }
        if (!(await tx.deleteProject(id))) throw new ConnectError("project not found", Code.NotFound);
      });
      deps.events.notify();
    },
  };
}

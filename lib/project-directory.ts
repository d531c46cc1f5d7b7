import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { ProjectService } from "../gen/mesh/project/v1/project_pb.js";
import { identityHeaders, type Caller } from "./identity.js";

/** Which projects a user owns: what logs, analytics and alerts are scoped to. */
export interface ProjectDirectory {
  projectIdsOf(userId: string): Promise<readonly string[]>;
}

/** What a caller may read: everything (admin), or some projects plus the user's own requests made outside any project. */
export type ReadScope =
  | { readonly all: true }
  | { readonly all: false; readonly projectIds: readonly string[]; readonly userId?: string | undefined };

/**
 * The read scope of a caller: an admin sees all; an API key its own project;
 * a user their projects (asked of the project service) and their own
 * requests.
 */
export async function readScopeOf(caller: Caller, directory: ProjectDirectory): Promise<ReadScope> {
  if (caller.isAdmin) return { all: true };
  if (caller.projectId) return { all: false, projectIds: [caller.projectId] };
  return { all: false, projectIds: await directory.projectIdsOf(caller.userId), userId: caller.userId };
}

/** Whether `projectId` is inside the scope. */
export function scopeHasProject(scope: ReadScope, projectId: string): boolean {
  return scope.all || scope.projectIds.includes(projectId);
}

const PAGE = 100;
const MAX_PAGES = 50;

/**
 * A ProjectDirectory over the project service's ListProjects (called as the
 * user), cached per user for `ttlMs` (default 15 s): a new project becomes
 * visible to reads within that time. UNAVAILABLE when the project service is.
 */
export function createProjectDirectory(client: Client<typeof ProjectService>, ttlMs = 15_000, now = () => Date.now()): ProjectDirectory {
  const cache = new Map<string, { at: number; ids: Promise<readonly string[]> }>();
  async function load(userId: string): Promise<readonly string[]> {
    const ids: string[] = [];
    const headers = identityHeaders({ userId });
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await client.listProjects({ page, limit: PAGE, sort: "createdAt", order: "asc" }, { headers, timeoutMs: 5_000 });
      ids.push(...res.projects.map((p) => p.id));
      if (ids.length >= res.total || res.projects.length < PAGE) return ids;
    }
    return ids;
  }
  return {
    projectIdsOf(userId) {
      const hit = cache.get(userId);
      if (hit && now() - hit.at < ttlMs) return hit.ids;
      const ids = load(userId).catch((err: unknown) => {
        cache.delete(userId);
        const e = ConnectError.from(err);
        throw e.code === Code.Unavailable || e.code === Code.DeadlineExceeded
          ? new ConnectError("project service unavailable", Code.Unavailable, undefined, undefined, err) : e;
      });
      cache.set(userId, { at: now(), ids });
      if (cache.size > 10_000) cache.clear();
      return ids;
    },
  };
}

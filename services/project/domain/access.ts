import { Code, ConnectError } from "@connectrpc/connect";
import type { Caller } from "../../../lib/identity.js";
import type { ProjectRecord, ProjectStore } from "../storage/port.js";

/**
 * The project `id` if the caller may act on it: its owner, or an admin.
 * Another user's project answers NOT_FOUND exactly like a missing one, so
 * ids reveal nothing about other tenants.
 */
export async function ownedProject(store: ProjectStore, caller: Caller, id: string): Promise<ProjectRecord> {
  const project = isUuid(id) ? await store.getProject(id) : undefined;
  if (!project || (!caller.isAdmin && project.ownerId !== caller.userId)) {
    throw new ConnectError("project not found", Code.NotFound);
  }
  return project;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are UUIDs; anything else cannot name a stored object (and must not reach a uuid column). */
export function isUuid(id: string): boolean {
  return uuidPattern.test(id);
}

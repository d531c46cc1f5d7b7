import { Code, ConnectError } from "@connectrpc/connect";
import { createViolations } from "../../../lib/errors.js";
import { followFeed } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import type { ApiKeyRecord, KeyEventRecord, Page } from "../storage/port.js";
import { isUuid, ownedProject } from "./access.js";
import { nameOf, pageOf } from "./inputs.js";
import { generateApiKey } from "./key-format.js";
import type { DomainDeps } from "./projects.js";
import type { UsageRecorder } from "./usage-recorder.js";

/** A key as VerifyApiKey answers it. */
export interface VerifiedKey {
  readonly id: string;
  readonly projectId: string;
  readonly userId: string;
  readonly name: string;
  readonly expiresAt?: Date | undefined;
}

const hexSha256 = /^[0-9a-f]{64}$/;

/** API keys: creation (plaintext shown once), listing, revocation, verification and the revocation feed. */
export function createApiKeysDomain(deps: DomainDeps & { readonly usage: UsageRecorder }) {
  const { store, now } = deps;
  return {
    /** Creates a key; the answer holds the plaintext, which is never stored. */
    async create(caller: Caller, projectId: string, input: { name: string; expiresAt?: Date | undefined }): Promise<ApiKeyRecord & { key: string }> {
      const v = createViolations();
      const name = nameOf(v, "name", input.name);
      if (input.expiresAt && input.expiresAt.getTime() <= now().getTime()) v.add("expires_at", "must be in the future");
      v.throwIfAny();
      await ownedProject(store, caller, projectId);
      const { key, prefix, hash } = generateApiKey();
      const record: ApiKeyRecord = { id: deps.newId(), projectId, keyHash: hash, prefix, name, expiresAt: input.expiresAt, createdAt: now() };
      await store.insertApiKey(record).catch((err: unknown) => {
        // The project was deleted between the check above and the insert.
        if (ConnectError.from(err).code === Code.FailedPrecondition) throw new ConnectError("project not found", Code.NotFound);
        throw err;
      });
      return { ...record, key };
    },

    async list(caller: Caller, projectId: string, q: { page: number; limit: number }): Promise<Page<ApiKeyRecord> & { page: number; limit: number }> {
      const v = createViolations();
      const paging = pageOf(v, q.page, q.limit);
      v.throwIfAny();
      await ownedProject(store, caller, projectId);
      return { ...(await store.listApiKeys(projectId, paging.offset, paging.limit)), page: paging.page, limit: paging.limit };
    },

    /** Revokes at once and announces it; revoking a revoked key changes nothing. NOT_FOUND for others' keys. */
    async revoke(caller: Caller, id: string): Promise<void> {
      const key = isUuid(id) ? await store.getApiKey(id) : undefined;
      if (!key) throw new ConnectError("API key not found", Code.NotFound);
      await ownedProject(store, caller, key.projectId).catch(() => {
        throw new ConnectError("API key not found", Code.NotFound);
      });
      const revokedNow = await store.transaction(async (tx) => {
        const result = await tx.revokeApiKey(id, now());
        if (result?.revokedNow) {
          await tx.appendKeyEvent({ kind: "revoked", keyId: id, keyHash: key.keyHash, projectId: key.projectId, occurredAt: now() });
        }
        return result?.revokedNow ?? false;
      });
      if (revokedNow) deps.events.notify();
    },

    /** The live key with this hash, or undefined (unknown, revoked, expired). Notes the use. */
    async verify(keyHash: string): Promise<VerifiedKey | undefined> {
      const v = createViolations();
      if (!hexSha256.test(keyHash)) v.add("key_hash", "must be the lower-case hex SHA-256 of the key");
      v.throwIfAny();
      const key = await store.findApiKeyByHash(keyHash);
      const at = now();
      if (!key || key.revokedAt || (key.expiresAt && key.expiresAt.getTime() <= at.getTime())) return undefined;
      deps.usage.note(key.id, at);
      return { id: key.id, projectId: key.projectId, userId: key.ownerId, name: key.name, expiresAt: key.expiresAt };
    },

    /** Key events after `after` (0: from now on), then each new one, until `signal` aborts. */
    async *watch(after: bigint, signal: AbortSignal): AsyncGenerator<KeyEventRecord> {
      const start = after > 0n ? after : await store.lastKeyEventVersion();
      yield* followFeed({
        after: start, signal, notifier: deps.events, read: (a, limit) => store.listKeyEvents(a, limit), versionOf: (e) => e.version,
      });
    },
  };
}

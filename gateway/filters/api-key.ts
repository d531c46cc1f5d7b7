import { createHash } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import type { GatewayState } from "../state/port.js";
import { watch } from "../watch.js";

/** A verified API key: who it acts for. */
export interface ApiKeyIdentity {
  readonly keyId: string;
  readonly projectId: string;
  /** The owner of the key's project (forwarded as x-user-id). */
  readonly userId: string;
}

export interface ApiKeyVerifierOptions {
  /** A transport to the project service (VerifyApiKey, WatchKeyEvents). */
  readonly transport: Transport;
  readonly state: GatewayState;
  readonly positiveTtlMs: number;
  readonly negativeTtlMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface ApiKeyVerifier {
  /** The key's identity, or undefined for an unknown, revoked or expired key. UNAVAILABLE if it cannot be checked. */
  verify(plaintext: string): Promise<ApiKeyIdentity | undefined>;
  /** Follows the project service's key events, dropping cached verdicts of revoked keys; stops on close. */
  watch(): void;
  close(): void;
}

/** How long a revocation is remembered against verdicts that were asked for before it arrived. */
const REVOKED_MEMORY_MS = 60_000;

/** The cache key of a key's verdict: its SHA-256, never the key itself. */
const verdictKey = (hash: string) => `apikey:${hash}`;

/**
 * API-key verification: SHA-256 of the key → cached verdict (valid or not,
 * with short TTLs, never past the key's expiry) → the project service's
 * VerifyApiKey. Verdicts live in the gateway state (Redis when configured),
 * and every gateway follows WatchKeyEvents to drop the verdict of a revoked
 * key as soon as the event arrives, resuming after its last seen version
 * when the stream breaks.
 */
export function createApiKeyVerifier(opts: ApiKeyVerifierOptions): ApiKeyVerifier {
  const now = opts.now ?? Date.now;
  const client = createClient(ProjectService, opts.transport);
  const stop = new AbortController();
  /** Key hashes revoked recently, by when the event arrived (oldest first), so an answer in flight cannot re-cache them. */
  const revokedAt = new Map<string, number>();

  async function cached(hash: string): Promise<ApiKeyIdentity | null | undefined> {
    try {
      const v = await opts.state.verdictGet(verdictKey(hash));
      return v === undefined ? undefined : (JSON.parse(v) as ApiKeyIdentity | null);
    } catch {
      return undefined; // a cache outage costs a VerifyApiKey call, nothing more
    }
  }

  async function remember(hash: string, identity: ApiKeyIdentity | null, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    await opts.state.verdictSet(verdictKey(hash), JSON.stringify(identity), Math.ceil(ttlMs)).catch(() => undefined);
  }

  return {
    async verify(plaintext) {
      const hash = createHash("sha256").update(plaintext).digest("hex");
      const hit = await cached(hash);
      if (hit !== undefined) return hit ?? undefined;
      const asked = now();
      let res;
      try {
        res = await client.verifyApiKey({ keyHash: hash }, { timeoutMs: 2_000 });
      } catch (err) {
        throw new ConnectError("API keys cannot be verified right now", Code.Unavailable, undefined, undefined, err);
      }
      if (!res.valid || !res.key) {
        await remember(hash, null, opts.negativeTtlMs);
        return undefined;
      }
      // A revocation announced while the answer was on its way wins: the answer predates it.
      if ((revokedAt.get(hash) ?? -Infinity) >= asked) return undefined;
      const identity: ApiKeyIdentity = { keyId: res.key.id, projectId: res.key.projectId, userId: res.key.userId };
      const untilExpiry = res.key.expiresAt ? timestampDate(res.key.expiresAt).getTime() - now() : Infinity;
      await remember(hash, identity, Math.min(opts.positiveTtlMs, untilExpiry));
      return identity;
    },

    watch() {
      void watch({
        name: "key events", logger: opts.logger, signal: stop.signal,
        open: (after, signal) => client.watchKeyEvents({ afterVersion: after }, { signal }),
        versionOf: (m) => m.event?.version,
        apply: async (m) => {
          const e = m.event;
          if (!e) return;
          revokedAt.delete(e.keyHash); // re-inserted last, so the map stays oldest first for the pruning below
          revokedAt.set(e.keyHash, now());
          for (const [h, at] of revokedAt) if (now() - at > REVOKED_MEMORY_MS) revokedAt.delete(h); else break;
          await opts.state.verdictDelete([verdictKey(e.keyHash)]).catch((err: unknown) =>
            opts.logger.warn({ err, key_id: e.keyId }, "could not drop a revoked key's cached verdict; it expires by its TTL"));
        },
      });
    },

    close: () => stop.abort(),
  };
}

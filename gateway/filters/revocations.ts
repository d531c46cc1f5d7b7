import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { watch } from "../watch.js";

export interface RevokedTokens {
  /** Whether the access token with this `jti` was revoked before its expiry. */
  has(jti: string): boolean;
  close(): void;
}

/**
 * The access tokens revoked before their expiry (logout, deactivation), as
 * the auth service announces them on WatchRevokedTokens: every live one
 * first, then each new one within moments. Entries are forgotten once their
 * token would have expired anyway. While the auth service is unreachable the
 * set keeps what it knew and the watch resumes after its last sequence.
 */
export function watchRevokedTokens(transport: Transport, logger: Logger, now: () => number = Date.now): RevokedTokens {
  const client = createClient(AuthService, transport);
  const revoked = new Map<string, number>();
  const stop = new AbortController();
  void watch({
    name: "revoked tokens", logger, signal: stop.signal,
    open: (after, signal) => client.watchRevokedTokens({ afterSequence: after }, { signal }),
    versionOf: (m) => m.token?.sequence,
    apply: (m) => {
      if (m.token) revoked.set(m.token.jti, m.token.expiresAt ? timestampDate(m.token.expiresAt).getTime() : Infinity);
    },
  });
  const prune = setInterval(() => {
    const t = now();
    for (const [jti, expires] of revoked) if (expires < t) revoked.delete(jti);
  }, 60_000);
  prune.unref();
  return {
    has: (jti) => revoked.has(jti),
    close() {
      stop.abort();
      clearInterval(prune);
    },
  };
}

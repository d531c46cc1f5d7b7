import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { createEmbeddedState } from "./embedded.js";
import type { GatewayState } from "./port.js";
import { createRedisState } from "./redis.js";

export interface GatewayStateOptions {
  /** `redis://…` or `rediss://…`; unset → the in-process embedded state (per instance). */
  readonly url?: string | undefined;
  readonly logger?: Logger | undefined;
  /** Redis only: a command without a reply by then fails with UNAVAILABLE. Default 100 ms. */
  readonly commandTimeoutMs?: number | undefined;
  /** Redis only: prepended to every key. Default `"mesh:gw:"`. */
  readonly keyPrefix?: string | undefined;
}

/** How long a Redis named by URL has to answer at startup. */
const STARTUP_WAIT_MS = 2_000;

/**
 * Opens the gateway state chosen by URL (DESIGN.md "State"), announcing the
 * choice in the log. With a URL, Redis must answer a ping within ~2 s: an
 * unreachable server at startup throws UNAVAILABLE naming it (without
 * credentials) rather than leaving a gateway whose every state call fails.
 * Once open, the state rides out outages by itself (calls fail with
 * UNAVAILABLE meanwhile).
 */
export async function openGatewayState(opts: GatewayStateOptions = {}): Promise<GatewayState> {
  if (!opts.url) {
    opts.logger?.info({ store: "embedded" }, "gateway state: embedded, per instance (set REDIS_URL to share it in Redis)");
    return createEmbeddedState();
  }
  const state = createRedisState(opts.url, {
    logger: opts.logger,
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.commandTimeoutMs } : {}),
    ...(opts.keyPrefix !== undefined ? { keyPrefix: opts.keyPrefix } : {}),
  });
  try {
    await pingUntil(state, performance.now() + STARTUP_WAIT_MS);
  } catch (err) {
    await state.close();
    throw new ConnectError(`Redis at ${redactUrl(opts.url)} is not reachable`, Code.Unavailable, undefined, undefined, err);
  }
  opts.logger?.info({ store: "redis", url: redactUrl(opts.url) }, "gateway state: Redis");
  return state;
}

/** Pings until an answer, retrying every 100 ms; throws the last failure once `deadline` (performance.now()) passes. */
async function pingUntil(state: GatewayState, deadline: number): Promise<void> {
  for (;;) {
    try {
      return await state.ping();
    } catch (err) {
      if (performance.now() + 100 > deadline) throw err;
      await sleep(100);
    }
  }
}

/** The URL without its credentials, for messages and logs. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/\?.*$/, "");
}

import { Code, ConnectError } from "@connectrpc/connect";
import { ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { Redis, type Command, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { dbCallTraced, dbErrorType, serverAttributes, traceDbCall, type DbAttributes } from "../../lib/db-tracing.js";
import { checkTtl } from "./args.js";
import { gcraParams, toDecision, toMicros } from "./gcra.js";
import type { GatewayState } from "./port.js";
import { cacheInvalidateLua, cacheSetLua, rateLimitLua } from "./redis-scripts.js";

export interface RedisStateOptions {
  /** Prepended to every key, so several meshes (or test runs) can share a server. Default `"mesh:gw:"`. */
  readonly keyPrefix?: string;
  /** A command without a reply by then fails with UNAVAILABLE. Default 100 ms. */
  readonly commandTimeoutMs?: number;
  /** A TCP connect taking longer is abandoned (and retried in the background). Default 1,000 ms. */
  readonly connectTimeoutMs?: number;
  /** Told once when Redis becomes unavailable and once when it is back. */
  readonly logger?: Logger | undefined;
}

/** Reconnect delays: 50 ms doubling to at most 1 s, forever (the adapter never gives up on the server). */
const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** Math.min(attempt - 1, 5), 1_000);

/** The adapter's scripted commands (redis-scripts.ts), as ioredis defines them on the client. */
interface Scripted {
  meshRateLimit(key: string, costUs: string, capacityUs: string, nowUs: string): Promise<[number, number, number, number]>;
  meshCacheSet(numKeys: number, ...keysThenArgs: (string | Buffer)[]): Promise<string>;
  meshCacheInvalidate(tagSet: string): Promise<number>;
}

/**
 * The Redis adapter of the gateway state port (port.ts), through ioredis; the
 * gateways sharing one Redis share their rate limits, cache and verdicts.
 * Keys: `<prefix>rl:<key>` (GCRA bucket: its TAT in µs), `<prefix>c:<key>`
 * (cache entry hash), `<prefix>t:<tag>` (a tag's set of entry keys),
 * `<prefix>v:<key>` (verdict string). The scripts are in redis-scripts.ts.
 *
 * Never hangs: no offline queue and no retries per request, so while the
 * connection is down every call fails at once; a connection attempt in
 * progress is waited for at most the command timeout; a command unanswered
 * within the command timeout fails; a connection that stays silent for 10×
 * that (at least 1 s) is dropped and redialled. ioredis reconnects in the
 * background (reconnectDelay), and calls succeed again once it has. Every
 * method throws ConnectError as mapped by `redisError`: UNAVAILABLE when
 * Redis is down or slow. A rate-limit decision that timed out may still have
 * been applied by the server; a failed one is never resent. Every command
 * gets a "redis" span under a recording caller span (`traceCommands`).
 */
export function createRedisState(url: string, opts: RedisStateOptions = {}): GatewayState {
  const commandTimeoutMs = opts.commandTimeoutMs ?? 100;
  const client = connect(url, {
    keyPrefix: opts.keyPrefix ?? "mesh:gw:",
    commandTimeout: commandTimeoutMs,
    socketTimeout: Math.max(1_000, 10 * commandTimeoutMs),
    connectTimeout: opts.connectTimeoutMs ?? 1_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false, // a decision the caller saw fail must never apply later
    retryStrategy: reconnectDelay,
    protocol: 2,
    connectionName: "mesh-gateway",
    // Commands issued in the same tick (concurrent requests) go out in one write: fewer syscalls per
    // decision under load, the same atomicity (each script still runs alone on the server).
    enableAutoPipelining: true,
  });
  traceCommands(client);
  client.defineCommand("meshRateLimit", { lua: rateLimitLua, numberOfKeys: 1 });
  client.defineCommand("meshCacheSet", { lua: cacheSetLua });
  client.defineCommand("meshCacheInvalidate", { lua: cacheInvalidateLua, numberOfKeys: 1 });
  const scripts = client as unknown as Scripted;
  // Connection errors surface through the calls (and `run`'s log); unheard, ioredis would print each one.
  client.on("error", () => undefined);
  const run = runner(client, commandTimeoutMs, opts.logger);
  return {
    kind: "redis",
    async rateLimit(req) {
      const p = gcraParams(req);
      const nowUs = req.now === undefined ? "" : String(toMicros(req.now));
      const [allowed, tatUs, atUs, retryUs] = await run(() =>
        scripts.meshRateLimit(`rl:${req.key}`, String(p.costUs), String(p.capacityUs), nowUs));
      return toDecision(p, { allowed: allowed === 1, tatUs, nowUs: atUs, retryUs });
    },
    cacheGet: (key) => run(async () => {
      const [value, storedAt, ttlMs] = await client.hmgetBuffer(`c:${key}`, "v", "s", "l");
      if (!value || !storedAt || !ttlMs) return undefined;
      return { value, storedAt: Number(storedAt.toString()), ttlMs: Number(ttlMs.toString()) };
    }),
    async cacheSet(key, value, ttlMs, tags) {
      checkTtl(ttlMs);
      const sets = [...new Set(tags)].map((tag) => `t:${tag}`);
      await run(() => scripts.meshCacheSet(1 + sets.length, `c:${key}`, ...sets, value, String(ttlMs)));
    },
    cacheInvalidate: (tag) => run(() => scripts.meshCacheInvalidate(`t:${tag}`)),
    verdictGet: (key) => run(async () => (await client.get(`v:${key}`)) ?? undefined),
    async verdictSet(key, value, ttlMs) {
      checkTtl(ttlMs);
      await run(() => client.set(`v:${key}`, value, "PX", ttlMs));
    },
    verdictDelete: (keys) => run(async () => {
      if (keys.length > 0) await client.del(...keys.map((k) => `v:${k}`));
    }),
    ping: () => run(async () => {
      await client.ping();
    }),
    close: () => run.close(),
  };
}

/** The ioredis client; a malformed URL throws INTERNAL (ioredis itself connects in the background). */
function connect(url: string, options: RedisOptions): Redis {
  try {
    return new Redis(url, options);
  } catch (err) {
    throw new ConnectError("invalid Redis URL", Code.Internal, undefined, undefined, err);
  }
}

/** What sends commands: the client, or a pipeline (auto-pipelining queues each command on one). */
interface CommandSender {
  sendCommand(command: Command, stream?: unknown, node?: unknown): unknown;
}

/**
 * Gives every command `client` sends a "redis" CLIENT span (lib/db-tracing.ts) when the caller's span records:
 * named by the command in upper case (a script call is EVALSHA, though ioredis sends EVAL with the body on a
 * connection's first call), with the db index and the server, never the arguments (keys and values hold ids and
 * tokens). The span starts where the caller issues the command, synchronously in its context: the client's
 * `sendCommand`, or with auto-pipelining, the `sendCommand` of the pipeline the command is queued on. Such a
 * pipeline later writes its commands through the client's `sendCommand` with a stream, from whichever context
 * flushes it; that pass is not traced again. The span ends when the command's promise settles. (MULTI builds
 * its pipelines apart, unseen here; the adapter sends none.)
 */
function traceCommands(client: Redis): void {
  const { db, path, host, port } = client.options;
  const server: DbAttributes = {
    [ATTR_DB_SYSTEM_NAME]: "redis", [ATTR_DB_NAMESPACE]: String(db ?? 0),
    ...serverAttributes(path ?? host, path ? undefined : port),
  };
  const traced = (send: CommandSender["sendCommand"]) => function (this: unknown, command: Command, stream?: unknown, node?: unknown): unknown {
    if (stream !== undefined || !dbCallTraced()) return send.call(this, command, stream, node);
    let sent: unknown;
    void traceDbCall({ ...server, [ATTR_DB_OPERATION_NAME]: command.name.toUpperCase() }, () => {
      sent = send.call(this, command, stream, node);
      return command.promise;
    }, redisErrorType);
    return sent;
  };
  const sender = client as unknown as CommandSender & { pipeline(...args: unknown[]): CommandSender };
  sender.sendCommand = traced(sender.sendCommand);
  const pipeline = sender.pipeline;
  sender.pipeline = function (this: unknown, ...args: unknown[]) {
    const p = pipeline.apply(this, args);
    p.sendCommand = traced(p.sendCommand);
    return p;
  };
}

/** `error.type` of a failed command: a server error's prefix (ERR, WRONGTYPE, NOSCRIPT…), else `dbErrorType`'s. */
function redisErrorType(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown };
  const prefix = e.name === "ReplyError" && typeof e.message === "string" ? /^[A-Z]+(?=\s|$)/.exec(e.message)?.[0] : undefined;
  return prefix ?? dbErrorType(err);
}

type Run = (<R>(op: () => Promise<R>) => Promise<R>) & { close(): Promise<void> };

/**
 * Runs client calls: waits (at most `waitMs`) for a connection attempt in
 * progress, fails at once when there is none, maps errors with `redisError`,
 * and logs once when calls start failing with UNAVAILABLE and once when one
 * succeeds again.
 */
function runner(client: Redis, waitMs: number, logger: Logger | undefined): Run {
  const ready = readiness(client, waitMs);
  let down = false;
  let closed = false;
  const run = async <R>(op: () => Promise<R>): Promise<R> => {
    if (closed) throw new ConnectError("gateway state is closed", Code.Unavailable);
    try {
      await ready();
      const result = await op();
      if (down) logger?.info("Redis reachable again");
      down = false;
      return result;
    } catch (err) {
      const mapped = redisError(err);
      if (mapped.code === Code.Unavailable && !down && !closed) {
        down = true;
        logger?.warn({ err }, "Redis unavailable; gateway state calls fail with UNAVAILABLE until it returns");
      }
      throw mapped;
    }
  };
  return Object.assign(run, {
    async close() {
      if (closed) return;
      closed = true;
      // QUIT lets replies in flight arrive; it fails (by the command timeout at most) when Redis is gone.
      if (client.status === "ready") await client.quit().catch(() => undefined);
      client.disconnect();
    },
  });
}

/** States in which ioredis is dialling or handshaking, so `ready` may follow shortly. */
const connecting = new Set(["wait", "connecting", "connect"]);

/**
 * A check that resolves when the client is ready. A connection attempt in
 * progress is waited for, at most `ms` and only until it fails (a refused
 * connect fails at once); with none in progress it throws UNAVAILABLE at
 * once. Callers waiting on one attempt share one pair of listeners.
 */
function readiness(client: Redis, ms: number): () => Promise<void> {
  let attempt: Promise<boolean> | undefined;
  const outcome = (): Promise<boolean> => (attempt ??= new Promise<boolean>((resolve) => {
    const settle = (ready: boolean) => () => {
      client.off("ready", onReady).off("close", onClose);
      attempt = undefined;
      resolve(ready);
    };
    const onReady = settle(true);
    const onClose = settle(false);
    client.once("ready", onReady).once("close", onClose);
  }));
  return async () => {
    if (client.status === "ready") return;
    if (connecting.has(client.status)) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)));
      const ready = await Promise.race([outcome(), timeout]).finally(() => clearTimeout(timer));
      if (ready) return;
    }
    throw new ConnectError("Redis not connected", Code.Unavailable);
  };
}

// What ioredis rejects with while the connection is down, not yet up, or slow
// (it throws plain Errors for these, told apart only by their message).
const unavailableMessages = /^(Command timed out|Stream isn't writeable|Connection is closed|Socket timeout|connect ETIMEDOUT)/;
// Socket errors surfacing from the connection.
const unavailableErrnos = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
// Server replies meaning "not now": loading a dataset, busy with a script, a replica cut off from its
// primary or read-only after a failover, out of memory (a full cache must not fail requests as a bug).
const unavailableReplies = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|OOM) /;

/**
 * The one mapping from ioredis errors to Connect codes: a ConnectError
 * passes; connection down, not ready, command or socket timeout, socket
 * errors, MaxRetriesPerRequestError and "not now" server replies →
 * UNAVAILABLE; anything else (a script error, a wrong type) → INTERNAL.
 * Messages are client-safe; the ioredis error is the `cause`.
 */
export function redisError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  const message = String(e.message ?? "");
  if (e.name === "MaxRetriesPerRequestError" || unavailableMessages.test(message)
    || (typeof e.code === "string" && unavailableErrnos.has(e.code))
    || (e.name === "ReplyError" && unavailableReplies.test(message))) {
    return new ConnectError("gateway state unavailable", Code.Unavailable, undefined, undefined, err);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

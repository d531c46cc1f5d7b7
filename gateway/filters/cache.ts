import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { Access, methodPolicy } from "../../lib/policy.js";
import type { GatewayState } from "../state/port.js";
import type { HttpBinding } from "../transcoding/bindings.js";
import type { CanonicalPath } from "../transcoding/path.js";
import type { Admitted } from "./admission.js";

/** A stored REST reply. */
export interface CachedReply {
  readonly status: number;
  readonly body: string;
}

export interface ResponseCacheOptions {
  readonly state: GatewayState;
  readonly maxEntryBytes: number;
  /** TTL of GET methods whose policy gives none; 0 caches only those with one. */
  readonly defaultTtlMs: number;
  readonly logger: Logger;
}

export interface ResponseCache {
  /** The TTL of a binding's replies: GET only, the method policy's `cache_ttl_seconds`, else the default. */
  ttlMs(binding: HttpBinding): number;
  /**
   * The cache key: method, route template, canonical path, sorted query, and
   * — for any route that is not public — the caller, so one caller's reply is
   * never served to another.
   */
  keyOf(binding: HttpBinding, path: CanonicalPath, query: URLSearchParams, caller: Admitted): string;
  /** The tag a caller's cached reads of a resource collection carry (a write to it drops them). */
  tagOf(path: CanonicalPath, caller: Admitted): string;
  get(key: string): Promise<CachedReply | undefined>;
  /** Stores a 2xx reply no larger than the limit; never throws (a cache outage only costs hits). */
  put(key: string, reply: CachedReply, ttlMs: number, tag: string): Promise<void>;
  /** Drops a caller's cached reads under the written resource's collection; never throws. */
  invalidate(tag: string): Promise<void>;
  /** Runs `fill` once for concurrent misses of one key in this process; the others share its result. */
  coalesce(key: string, fill: () => Promise<CachedReply>): Promise<{ reply: CachedReply; leader: boolean }>;
}

/**
 * The REST response cache over the gateway state. Only GET replies with a
 * TTL > 0 are cached, only 2xx ones, only up to `maxEntryBytes`; errors are
 * never stored. Invalidation is by collection: a successful write through
 * the gateway to `/api/v1/projects/…` drops that caller's cached reads under
 * `/api/v1/projects`.
 */
export function createResponseCache(opts: ResponseCacheOptions): ResponseCache {
  const inflight = new Map<string, Promise<CachedReply>>();
  const callerOf = (binding: HttpBinding | undefined, caller: Admitted) =>
    binding && methodPolicy(binding.method).access === Access.PUBLIC ? "public" : `${caller.subject.tier}:${caller.subject.id}`;
  return {
    ttlMs(binding) {
      if (binding.verb !== "GET" || binding.method.methodKind !== "unary") return 0;
      const seconds = methodPolicy(binding.method).cacheTtlSeconds;
      return seconds > 0 ? seconds * 1000 : opts.defaultTtlMs;
    },
    keyOf(binding, path, query, caller) {
      const sorted = [...query.entries()].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1));
      const text = `${binding.verb} ${binding.template.source}|${path.path}?${new URLSearchParams(sorted).toString()}|${callerOf(binding, caller)}`;
      return `cache:${createHash("sha256").update(text).digest("hex")}`;
    },
    tagOf(path, caller) {
      return `${callerOf(undefined, caller)}|/${path.segments.slice(0, 3).join("/")}`;
    },
    async get(key) {
      try {
        const hit = await opts.state.cacheGet(key);
        return hit ? unpack(hit.value) : undefined;
      } catch (err) {
        opts.logger.debug({ err }, "cache read failed; answering from upstream");
        return undefined;
      }
    },
    async put(key, reply, ttlMs, tag) {
      if (reply.status < 200 || reply.status >= 300 || ttlMs <= 0) return;
      if (Buffer.byteLength(reply.body) > opts.maxEntryBytes) return; // the reply body's size, as clients see it
      const value = pack(reply);
      await opts.state.cacheSet(key, value, Math.ceil(ttlMs), [tag]).catch((err: unknown) => opts.logger.debug({ err }, "cache write failed"));
    },
    async invalidate(tag) {
      await opts.state.cacheInvalidate(tag).catch((err: unknown) => opts.logger.warn({ err, tag }, "cache invalidation failed; entries expire by their TTL"));
    },
    async coalesce(key, fill) {
      const running = inflight.get(key);
      if (running) return { reply: await running, leader: false };
      const p = fill().finally(() => inflight.delete(key));
      inflight.set(key, p);
      return { reply: await p, leader: true };
    },
  };
}

/** A stored reply: its status, a newline, its body (no JSON wrapping to parse on every HIT). */
function pack(reply: CachedReply): Buffer {
  return Buffer.from(`${reply.status}\n${reply.body}`);
}

function unpack(value: Buffer): CachedReply | undefined {
  const nl = value.indexOf(10);
  const status = Number(value.subarray(0, nl).toString("latin1"));
  return nl > 0 && Number.isInteger(status) ? { status, body: value.subarray(nl + 1).toString("utf8") } : undefined;
}

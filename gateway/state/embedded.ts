import { Code, ConnectError } from "@connectrpc/connect";
import { checkTtl } from "./args.js";
import { gcraParams, gcraStep, toDecision, toMicros } from "./gcra.js";
import type { CachedEntry, GatewayState } from "./port.js";
import { createTtlMap } from "./ttl-map.js";

export interface EmbeddedStateOptions {
  /** The clock, epoch ms; default Date.now. Tests inject one. */
  readonly now?: () => number;
  /** Cap on cached responses and on verdicts (each); past it the oldest-written goes. Default 10,000. */
  readonly maxEntries?: number;
  /**
   * Cap on rate-limit buckets; default 100,000. Evicting a bucket that is not
   * yet full forgives its caller, so keep it well above the active callers.
   */
  readonly maxBuckets?: number;
}

interface Stored extends CachedEntry {
  readonly tags: readonly string[];
}

/**
 * The in-process adapter of the gateway state port (port.ts): the default
 * when REDIS_URL is unset, and then per instance (nothing is shared between
 * gateway replicas). A real implementation, not a mock: it passes the same
 * contract suite as redis.ts. Rate limits run the same GCRA arithmetic
 * (gcra.ts); entries expire by the injected clock; memory is bounded by
 * the caps. Each method runs to the end synchronously, so every operation is
 * atomic with respect to the others. Values are copied in and out.
 */
export function createEmbeddedState(opts: EmbeddedStateOptions = {}): GatewayState {
  const now = opts.now ?? Date.now;
  const maxEntries = opts.maxEntries ?? 10_000;
  /** tag → keys of live entries carrying it; kept exact through onDrop, so it never outgrows the cache. */
  const tagged = new Map<string, Set<string>>();
  const untag = (key: string, entry: Stored): void => {
    for (const tag of entry.tags) {
      const keys = tagged.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) tagged.delete(tag);
    }
  };
  const cache = createTtlMap<Stored>({ now, maxEntries, onDrop: untag });
  const verdicts = createTtlMap<string>({ now, maxEntries });
  const buckets = createTtlMap<number>({ now, maxEntries: opts.maxBuckets ?? 100_000 });
  let closed = false;
  const run = async <R>(op: () => R): Promise<R> => {
    if (closed) throw new ConnectError("gateway state is closed", Code.Unavailable);
    return op();
  };
  return {
    kind: "embedded",
    rateLimit: (req) => run(() => {
      const p = gcraParams(req);
      const step = gcraStep(buckets.get(req.key), toMicros(req.now ?? now()), p);
      // Kept until the bucket is full again (then absent means the same), measured like Redis's PX: from
      // the decision, on the store's clock (a request's `now` may lie elsewhere).
      if (step.allowed && p.costUs > 0) buckets.set(req.key, step.tatUs, now() + (step.tatUs - step.nowUs) / 1000);
      return toDecision(p, step);
    }),
    cacheGet: (key) => run(() => {
      const e = cache.get(key);
      return e && { value: Buffer.from(e.value), storedAt: e.storedAt, ttlMs: e.ttlMs };
    }),
    cacheSet: (key, value, ttlMs, tags) => run(() => {
      checkTtl(ttlMs);
      const storedAt = now();
      const entry: Stored = { value: Buffer.from(value), storedAt, ttlMs, tags: [...new Set(tags)] };
      cache.set(key, entry, storedAt + ttlMs);
      for (const tag of entry.tags) {
        let keys = tagged.get(tag);
        if (!keys) tagged.set(tag, (keys = new Set()));
        keys.add(key);
      }
    }),
    cacheInvalidate: (tag) => run(() => {
      let dropped = 0;
      for (const key of [...(tagged.get(tag) ?? [])]) if (cache.delete(key)) dropped++;
      return dropped;
    }),
    verdictGet: (key) => run(() => verdicts.get(key)),
    verdictSet: (key, value, ttlMs) => run(() => {
      checkTtl(ttlMs);
      verdicts.set(key, value, now() + ttlMs);
    }),
    verdictDelete: (keys) => run(() => {
      for (const key of keys) verdicts.delete(key);
    }),
    ping: () => run(() => undefined),
    async close() {
      closed = true;
      cache.clear();
      verdicts.clear();
      buckets.clear();
    },
  };
}

/** A map whose entries expire by time and whose size is capped (embedded.ts's storage). */
export interface TtlMap<V> {
  /** The live value under `key`; an expired one is dropped and reads as absent. */
  get(key: string): V | undefined;
  /** Stores `value` until `expiresAt` (epoch ms; expired from that instant on), replacing any entry under `key`. */
  set(key: string, value: V, expiresAt: number): void;
  /** Drops the entry under `key`; answers whether a live one was there. */
  delete(key: string): boolean;
  readonly size: number;
  clear(): void;
}

export interface TtlMapOptions<V> {
  readonly now: () => number;
  /** Past this many entries the oldest-written is evicted. */
  readonly maxEntries: number;
  /** Called for every entry that leaves the map: replaced, deleted, expired or evicted. */
  readonly onDrop?: (key: string, value: V) => void;
}

/** Expired entries the map looks for (at its oldest end) on every write, so they never pile up unread. */
const SWEEP_PER_WRITE = 2;

/**
 * A TtlMap. Entries sit in write order (a JS Map keeps insertion order and a
 * write re-inserts), so the oldest-written is first: that one is evicted when
 * the cap is passed, and each write checks the first few for expiry. Every
 * operation is O(1) amortized; memory is bounded by `maxEntries`.
 */
export function createTtlMap<V>(opts: TtlMapOptions<V>): TtlMap<V> {
  const entries = new Map<string, { value: V; expiresAt: number }>();
  const drop = (key: string): { value: V; expiresAt: number } | undefined => {
    const e = entries.get(key);
    if (!e) return undefined;
    entries.delete(key);
    opts.onDrop?.(key, e.value);
    return e;
  };
  const sweep = (): void => {
    let checked = 0;
    for (const [key, e] of entries) {
      if (checked++ >= SWEEP_PER_WRITE) break;
      if (e.expiresAt <= opts.now()) drop(key);
    }
  };
  return {
    get(key) {
      const e = entries.get(key);
      if (!e) return undefined;
      if (e.expiresAt > opts.now()) return e.value;
      drop(key);
      return undefined;
    },
    set(key, value, expiresAt) {
      drop(key);
      entries.set(key, { value, expiresAt });
      sweep();
      while (entries.size > opts.maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done) break;
        drop(oldest.value);
      }
    },
    delete(key) {
      const e = drop(key);
      return e !== undefined && e.expiresAt > opts.now();
    },
    get size() {
      return entries.size;
    },
    clear() {
      for (const key of [...entries.keys()]) drop(key);
    },
  };
}

import { describe, expect, it } from "vitest";
import { createNotifier, followFeed } from "./event-feed.js";

interface Entry { version: bigint; name: string }

function memoryLog() {
  const entries: Entry[] = [];
  let reads = 0;
  return {
    entries,
    get reads() { return reads; },
    append(name: string) { entries.push({ version: BigInt(entries.length + 1), name }); },
    async read(after: bigint, limit: number) {
      reads++;
      return entries.filter((e) => e.version > after).slice(0, limit);
    },
  };
}

async function take(gen: AsyncGenerator<Entry>, n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const e of gen) {
    out.push(e.name);
    if (out.length === n) break;
  }
  return out;
}

describe("followFeed", () => {
  it("replays entries after the given version, then follows new ones", async () => {
    const log = memoryLog();
    log.append("a"); log.append("b"); log.append("c");
    const ctrl = new AbortController();
    const feed = followFeed({ after: 1n, read: log.read, versionOf: (e) => e.version, signal: ctrl.signal, intervalMs: 10 });
    setTimeout(() => log.append("d"), 30);
    expect(await take(feed, 3)).toEqual(["b", "c", "d"]);
    ctrl.abort();
  });

  it("reads past a full batch without waiting", async () => {
    const log = memoryLog();
    for (let i = 0; i < 1200; i++) log.append(`e${i}`);
    const ctrl = new AbortController();
    const started = Date.now();
    const names = await take(followFeed({ after: 0n, read: log.read, versionOf: (e) => e.version, signal: ctrl.signal, intervalMs: 5_000 }), 1200);
    expect(names).toHaveLength(1200);
    expect(Date.now() - started).toBeLessThan(2_000);
    ctrl.abort();
  });

  it("wakes at once on notify instead of waiting for the next poll", async () => {
    const log = memoryLog();
    const notifier = createNotifier();
    const ctrl = new AbortController();
    const feed = followFeed({ after: 0n, read: log.read, versionOf: (e) => e.version, signal: ctrl.signal, intervalMs: 60_000, notifier });
    const next = take(feed, 1);
    await new Promise((r) => setTimeout(r, 20));
    log.append("x");
    notifier.notify();
    expect(await next).toEqual(["x"]);
    ctrl.abort();
  });

  it("ends when the signal aborts", async () => {
    const log = memoryLog();
    const ctrl = new AbortController();
    const feed = followFeed({ after: 0n, read: log.read, versionOf: (e) => e.version, signal: ctrl.signal, intervalMs: 60_000 });
    setTimeout(() => ctrl.abort(), 20);
    expect(await take(feed, 1)).toEqual([]);
  });
});

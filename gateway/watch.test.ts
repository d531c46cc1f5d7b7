import { getEventListeners } from "node:events";
import type { Logger } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { watch } from "./watch.js";

interface Msg { readonly v?: bigint; readonly name: string }
type Script = (after: bigint, signal: AbortSignal) => AsyncIterable<Msg>;

/** Waits for `signal`, then fails as a cancelled stream does. */
const idle = (signal: AbortSignal) => new Promise<never>((_, reject) => {
  if (signal.aborted) reject(signal.reason);
  signal.addEventListener("abort", () => reject(signal.reason), { once: true });
});
const fails = (message = "stream broke"): Script => async function* () { throw new Error(message); };
const yields = (msgs: Msg[], then: "fail" | "end" | "idle"): Script => async function* (_, signal) {
  for (const m of msgs) yield m;
  if (then === "fail") throw new Error("stream broke");
  if (then === "idle") await idle(signal);
};

/** Runs watch over scripts (one per open; the last repeats) with fake timers; records what it did. */
function run(scripts: Script[], o: { apply?: (m: Msg) => void | Promise<void> } = {}) {
  const controller = new AbortController();
  const opens: { after: bigint; at: number }[] = [];
  const applied: string[] = [];
  const logger = { warn: vi.fn(), info: vi.fn(), debug: vi.fn(), error: vi.fn() };
  const done = watch<Msg>({
    name: "test", logger: logger as unknown as Logger, signal: controller.signal, minBackoffMs: 100, maxBackoffMs: 400,
    open: (after, signal) => {
      opens.push({ after, at: Date.now() });
      return scripts[Math.min(opens.length - 1, scripts.length - 1)]!(after, signal);
    },
    versionOf: (m) => m.v,
    apply: async (m) => {
      await o.apply?.(m);
      applied.push(m.name);
    },
  });
  let finished = false;
  void done.then(() => { finished = true; });
  return { controller, opens, applied, logger, done, finished: () => finished, signal: controller.signal };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});
afterEach(() => { vi.useRealTimers(); });
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

describe("watch", () => {
  it("applies messages in order and reopens after the last version when the stream breaks", async () => {
    const w = run([
      yields([{ v: 1n, name: "a" }, { v: 3n, name: "c" }, { name: "no-version" }], "fail"),
      yields([{ v: 4n, name: "d" }], "idle"),
    ]);
    await tick(100);
    expect(w.applied).toEqual(["a", "c", "no-version", "d"]);
    expect(w.opens.map((o) => o.after)).toEqual([0n, 3n]);
    w.controller.abort();
    await w.done;
  });

  it("reopens after a stream that ends cleanly, too", async () => {
    const w = run([yields([{ v: 2n, name: "a" }], "end"), yields([], "idle")]);
    await tick(100);
    expect(w.opens.map((o) => o.after)).toEqual([0n, 2n]);
    w.controller.abort();
  });

  it("backs off exponentially up to the cap, and from the minimum again after a message", async () => {
    const w = run([fails(), fails(), fails(), fails(), fails(), yields([{ v: 1n, name: "a" }], "fail"), fails(), fails()]);
    await tick(100 + 200 + 400 + 400 + 400 + 100 + 200);
    const gaps = w.opens.slice(1).map((o, i) => o.at - w.opens[i]!.at);
    expect(gaps).toEqual([100, 200, 400, 400, 400, 100, 200]);
    w.controller.abort();
  });

  it("replays a message whose apply failed", async () => {
    let failures = 1;
    const w = run([yields([{ v: 1n, name: "a" }, { v: 2n, name: "b" }], "idle")], {
      apply: (m) => { if (m.name === "b" && failures-- > 0) throw new Error("apply failed"); },
    });
    await tick(100);
    expect(w.opens.map((o) => o.after)).toEqual([0n, 1n]);
    expect(w.applied).toEqual(["a", "a", "b"]);
    w.controller.abort();
  });

  it("warns once per outage and says when it resumed", async () => {
    const w = run([fails(), fails(), fails(), yields([{ v: 1n, name: "a" }, { v: 2n, name: "b" }], "fail"), yields([{ v: 3n, name: "c" }], "idle")]);
    await tick(100 + 200 + 400 + 100);
    expect(w.applied).toEqual(["a", "b", "c"]);
    expect(w.logger.warn).toHaveBeenCalledTimes(2); // the first outage, then the second
    expect(w.logger.info).toHaveBeenCalledTimes(2);
    expect(w.logger.info).toHaveBeenCalledWith({ watch: "test" }, "watch resumed");
    w.controller.abort();
  });

  it("stops when aborted while streaming, without a warning", async () => {
    const w = run([yields([{ v: 1n, name: "a" }], "idle")]);
    await tick();
    w.controller.abort();
    await w.done;
    expect([w.opens.length, w.logger.warn.mock.calls.length]).toEqual([1, 0]);
  });

  it("stops promptly when aborted while backing off", async () => {
    const w = run([fails()]);
    await tick(100 + 200 + 50);
    expect(w.opens).toHaveLength(3);
    w.controller.abort();
    await tick();
    expect(w.finished()).toBe(true);
    await tick(10_000);
    expect(w.opens).toHaveLength(3);
  });

  it("does not pile up abort listeners over a long outage", async () => {
    const w = run([fails()]);
    await tick(100 + 200 + 400 * 30);
    expect(w.opens.length).toBeGreaterThan(30);
    expect(getEventListeners(w.signal, "abort").length).toBeLessThanOrEqual(1);
    w.controller.abort();
  });
});

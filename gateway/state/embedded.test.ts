import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { gatewayStateContract } from "./contract.js";
import { createEmbeddedState, type EmbeddedStateOptions } from "./embedded.js";
import { openGatewayState } from "./open.js";

/** A clock that moves only when told. */
function manualClock(start = Date.parse("2026-03-01T12:00:00.000Z")): { now: () => number; advance: (ms: number) => void } {
  let at = start;
  return { now: () => at, advance: (ms) => void (at += ms) };
}

function embedded(opts: Omit<EmbeddedStateOptions, "now"> = {}) {
  const clock = manualClock();
  return { clock, state: createEmbeddedState({ ...opts, now: clock.now }) };
}

gatewayStateContract("embedded", async () => {
  const { clock, state } = embedded();
  return { state, now: clock.now, advance: async (ms) => clock.advance(ms), clockSlackMs: 0 };
});

describe("embedded GatewayState bounds", () => {
  it("evicts the oldest-written cache entry past maxEntries, and untags it", async () => {
    const { state } = embedded({ maxEntries: 2 });
    await state.cacheSet("a", Buffer.from("a"), 60_000, ["t"]);
    await state.cacheSet("b", Buffer.from("b"), 60_000, ["t"]);
    await state.cacheSet("a", Buffer.from("a2"), 60_000, ["t"]); // rewriting makes "a" the newest
    await state.cacheSet("c", Buffer.from("c"), 60_000, ["t"]);
    expect(await state.cacheGet("b")).toBeUndefined();
    expect((await state.cacheGet("a"))?.value).toEqual(Buffer.from("a2"));
    expect(await state.cacheInvalidate("t")).toBe(2);
  });

  it("evicts the oldest verdict past maxEntries", async () => {
    const { state } = embedded({ maxEntries: 1 });
    await state.verdictSet("a", "1", 60_000);
    await state.verdictSet("b", "2", 60_000);
    expect([await state.verdictGet("a"), await state.verdictGet("b")]).toEqual([undefined, "2"]);
  });
});

describe("openGatewayState without a URL", () => {
  it("opens the embedded state and says so", async () => {
    const lines: string[] = [];
    const logger = pino({}, { write: (line: string) => lines.push(JSON.parse(line).msg) });
    const state = await openGatewayState({ logger });
    expect(state.kind).toBe("embedded");
    expect(lines).toEqual(["gateway state: embedded, per instance (set REDIS_URL to share it in Redis)"]);
    await state.close();
  });
});

import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { rejectionOf } from "../../test/support/rejection.js";
import type { GatewayState } from "./port.js";

/**
 * An opened state with the clock it runs on: the embedded adapter's injected
 * clock (advancing it is instant), or real time for Redis, whose expiry only
 * real time drives (advancing sleeps, so the suite keeps those waits short).
 */
export interface StateUnderTest {
  readonly state: GatewayState;
  /** The state's idea of now, epoch ms. */
  now(): number;
  advance(ms: number): Promise<void>;
  /** How far `now()` may be from the state's own clock (Redis TIME vs Date.now), ms. */
  readonly clockSlackMs: number;
}

// A fixed instant for decisions that pass `now`: the rate-limit contract never reads a clock.
const T0 = Date.parse("2026-01-01T00:00:00.000Z");

/**
 * The GatewayState contract (port.ts), run against every adapter. `open` is
 * called for every test; keys are unique to the run, so suites sharing a
 * server never collide. Long-lived entries use TTLs of a minute at most.
 */
export function gatewayStateContract(name: string, open: () => Promise<StateUnderTest>): void {
  describe(`GatewayState contract (${name})`, () => {
    const run = randomBytes(4).toString("hex");
    let n = 0;
    /** A key (or tag) no other test uses. */
    const fresh = (what: string): string => `${what}-${run}-${n++}`;
    let t: StateUnderTest;
    let s: GatewayState;
    beforeEach(async () => {
      t = await open();
      s = t.state;
    });
    afterEach(() => t.state.close());

    it("answers a ping", async () => {
      await s.ping();
    });

    describe("rateLimit", () => {
      const limit5 = (key: string, at: number, cost?: number) =>
        s.rateLimit({ key, limit: 5, periodMs: 1_000, now: at, ...(cost === undefined ? {} : { cost }) });

      it("allows exactly `limit` back-to-back requests, counting remaining down, then denies", async () => {
        const key = fresh("rl");
        const answers = [];
        for (let i = 0; i < 6; i++) answers.push(await limit5(key, T0));
        expect(answers.map((a) => [a.allowed, a.remaining])).toEqual([[true, 4], [true, 3], [true, 2], [true, 1], [true, 0], [false, 0]]);
        expect(answers[0]).toEqual({ allowed: true, limit: 5, remaining: 4, resetMs: T0 + 200, retryAfterMs: 0 });
        expect(answers[5]).toEqual({ allowed: false, limit: 5, remaining: 0, resetMs: T0 + 1_000, retryAfterMs: 200 });
      });
      it("consumes nothing on a denied request", async () => {
        const key = fresh("rl");
        for (let i = 0; i < 5; i++) await limit5(key, T0);
        for (let i = 0; i < 3; i++) expect((await limit5(key, T0 + 100)).allowed).toBe(false);
        expect(await limit5(key, T0 + 200)).toMatchObject({ allowed: true, remaining: 0, resetMs: T0 + 1_200 });
        expect(await limit5(key, T0 + 200)).toMatchObject({ allowed: false, retryAfterMs: 200 });
      });
      it("is allowed again exactly retryAfterMs later", async () => {
        const key = fresh("rl");
        for (let i = 0; i < 5; i++) await limit5(key, T0 + 50);
        const denied = await limit5(key, T0 + 120);
        expect(denied.retryAfterMs).toBe(130);
        expect((await limit5(key, T0 + 120 + denied.retryAfterMs - 1)).allowed).toBe(false);
        expect((await limit5(key, T0 + 120 + denied.retryAfterMs)).allowed).toBe(true);
      });
      it("refills one request per emission interval (periodMs / limit)", async () => {
        const key = fresh("rl");
        for (let i = 0; i < 5; i++) await limit5(key, T0);
        const after = [];
        for (let i = 0; i < 4; i++) after.push((await limit5(key, T0 + 600)).allowed);
        expect(after).toEqual([true, true, true, false]);
      });
      it("is full again at resetMs", async () => {
        const key = fresh("rl");
        let last = await limit5(key, T0);
        for (let i = 0; i < 4; i++) last = await limit5(key, T0);
        expect(last.resetMs).toBe(T0 + 1_000);
        expect(await limit5(key, last.resetMs)).toMatchObject({ allowed: true, remaining: 4, resetMs: T0 + 1_200 });
      });
      it("charges the cost, and denies a request costing more than remains without charging it", async () => {
        const key = fresh("rl");
        expect(await limit5(key, T0, 3)).toMatchObject({ allowed: true, remaining: 2, resetMs: T0 + 600 });
        expect(await limit5(key, T0, 3)).toEqual({ allowed: false, limit: 5, remaining: 2, resetMs: T0 + 600, retryAfterMs: 200 });
        expect(await limit5(key, T0, 2)).toMatchObject({ allowed: true, remaining: 0 });
      });
      it("reads the bucket without consuming at cost 0", async () => {
        const key = fresh("rl");
        await limit5(key, T0, 2);
        expect(await limit5(key, T0 + 100, 0)).toEqual({ allowed: true, limit: 5, remaining: 3, resetMs: T0 + 400, retryAfterMs: 0 });
        expect(await limit5(key, T0 + 100, 0)).toMatchObject({ remaining: 3 });
      });
      it("admits exactly `limit` when the period does not divide evenly", async () => {
        const key = fresh("rl");
        const allowed = [];
        for (let i = 0; i < 8; i++) allowed.push((await s.rateLimit({ key, limit: 7, periodMs: 1_000, now: T0 })).allowed);
        expect(allowed.filter(Boolean)).toHaveLength(7);
      });
      it("keeps keys apart", async () => {
        const [a, b] = [fresh("rl"), fresh("rl")];
        for (let i = 0; i < 5; i++) await limit5(a, T0);
        expect((await limit5(a, T0)).allowed).toBe(false);
        expect(await limit5(b, T0)).toMatchObject({ allowed: true, remaining: 4 });
      });
      it("decides on the state's own clock when `now` is not given", async () => {
        const before = t.now();
        const d = await s.rateLimit({ key: fresh("rl"), limit: 5, periodMs: 1_000 });
        const after = t.now();
        expect(d.resetMs).toBeGreaterThanOrEqual(before + 200 - t.clockSlackMs);
        expect(d.resetMs).toBeLessThanOrEqual(after + 200 + 1 + t.clockSlackMs);
      });
      it.each([
        ["a limit of 0", { limit: 0, periodMs: 1_000 }],
        ["a fractional limit", { limit: 1.5, periodMs: 1_000 }],
        ["a period of 0", { limit: 5, periodMs: 0 }],
        ["a cost above the limit", { limit: 5, periodMs: 1_000, cost: 6 }],
        ["a negative cost", { limit: 5, periodMs: 1_000, cost: -1 }],
      ])("rejects %s with INVALID_ARGUMENT", async (_, args) => {
        expect((await rejectionOf(s.rateLimit({ key: fresh("rl"), now: T0, ...args }))).code).toBe(Code.InvalidArgument);
      });
    });

    describe("response cache", () => {
      const body = (text: string): Buffer => Buffer.from(text);

      it("round-trips an entry with when it was stored and its ttl", async () => {
        const key = fresh("c");
        const before = t.now();
        await s.cacheSet(key, body("hello"), 60_000, [fresh("tag")]);
        const after = t.now();
        const e = await s.cacheGet(key);
        expect(e?.value).toEqual(body("hello"));
        expect(e?.ttlMs).toBe(60_000);
        expect(e?.storedAt).toBeGreaterThanOrEqual(before - t.clockSlackMs);
        expect(e?.storedAt).toBeLessThanOrEqual(after + t.clockSlackMs);
      });
      it("answers undefined for an absent key", async () => {
        expect(await s.cacheGet(fresh("c"))).toBeUndefined();
      });
      it("keeps every byte of a binary body, and an empty one", async () => {
        const [k1, k2] = [fresh("c"), fresh("c")];
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await s.cacheSet(k1, bytes, 60_000, []);
        await s.cacheSet(k2, Buffer.alloc(0), 60_000, []);
        expect((await s.cacheGet(k1))?.value).toEqual(bytes);
        expect((await s.cacheGet(k2))?.value).toEqual(Buffer.alloc(0));
      });
      it("stores a copy: changing the buffer afterwards changes nothing", async () => {
        const key = fresh("c");
        const value = body("abc");
        await s.cacheSet(key, value, 60_000, []);
        value.write("xyz");
        (await s.cacheGet(key))?.value.write("qqq");
        expect((await s.cacheGet(key))?.value).toEqual(body("abc"));
      });
      it("replaces an entry", async () => {
        const key = fresh("c");
        await s.cacheSet(key, body("one"), 60_000, []);
        await s.cacheSet(key, body("two"), 30_000, []);
        expect(await s.cacheGet(key)).toMatchObject({ value: body("two"), ttlMs: 30_000 });
      });
      it("expires an entry after its ttl, for good", async () => {
        const [short, long, tag] = [fresh("c"), fresh("c"), fresh("tag")];
        await s.cacheSet(short, body("s"), 40, [tag]);
        await s.cacheSet(long, body("l"), 60_000, [tag]);
        await t.advance(120);
        expect(await s.cacheGet(short)).toBeUndefined();
        expect((await s.cacheGet(long))?.value).toEqual(body("l"));
        expect(await s.cacheInvalidate(tag)).toBe(1);
        expect(await s.cacheGet(short)).toBeUndefined();
      });
      it("invalidates every entry carrying a tag, answering how many, and only those", async () => {
        const [a, b, other] = [fresh("tag"), fresh("tag"), fresh("tag")];
        const keys = [fresh("c"), fresh("c"), fresh("c"), fresh("c")];
        await s.cacheSet(keys[0] ?? "", body("0"), 60_000, [a]);
        await s.cacheSet(keys[1] ?? "", body("1"), 60_000, [a, b]);
        await s.cacheSet(keys[2] ?? "", body("2"), 60_000, [b]);
        await s.cacheSet(keys[3] ?? "", body("3"), 60_000, [other]);
        expect(await s.cacheInvalidate(a)).toBe(2);
        expect(await Promise.all(keys.map(async (k) => (await s.cacheGet(k)) !== undefined))).toEqual([false, false, true, true]);
        expect(await s.cacheInvalidate(b)).toBe(1);
        expect(await s.cacheInvalidate(b)).toBe(0);
        expect(await s.cacheInvalidate(fresh("tag"))).toBe(0);
      });
      it("counts a tag named twice on one entry once", async () => {
        const [key, tag] = [fresh("c"), fresh("tag")];
        await s.cacheSet(key, body("x"), 60_000, [tag, tag]);
        expect(await s.cacheInvalidate(tag)).toBe(1);
      });
      it("drops a replaced entry's old tags", async () => {
        const [key, a, b] = [fresh("c"), fresh("tag"), fresh("tag")];
        await s.cacheSet(key, body("one"), 60_000, [a]);
        await s.cacheSet(key, body("two"), 60_000, [b]);
        expect(await s.cacheInvalidate(a)).toBe(0);
        expect((await s.cacheGet(key))?.value).toEqual(body("two"));
        expect(await s.cacheInvalidate(b)).toBe(1);
      });
      it("does not drop an entry stored again, without the tag, after an expired one carried it", async () => {
        const [key, a, b] = [fresh("c"), fresh("tag"), fresh("tag")];
        await s.cacheSet(key, body("one"), 40, [a]);
        await t.advance(120);
        await s.cacheSet(key, body("two"), 60_000, [b]);
        expect(await s.cacheInvalidate(a)).toBe(0);
        expect((await s.cacheGet(key))?.value).toEqual(body("two"));
      });
      it("rejects a ttl of 0 or a fraction with INVALID_ARGUMENT", async () => {
        expect((await rejectionOf(s.cacheSet(fresh("c"), body("x"), 0, []))).code).toBe(Code.InvalidArgument);
        expect((await rejectionOf(s.cacheSet(fresh("c"), body("x"), 1.5, []))).code).toBe(Code.InvalidArgument);
      });
    });

    describe("verdict cache", () => {
      it("round-trips a verdict and answers undefined for an absent one", async () => {
        const key = fresh("v");
        await s.verdictSet(key, '{"ok":true}', 60_000);
        expect(await s.verdictGet(key)).toBe('{"ok":true}');
        expect(await s.verdictGet(fresh("v"))).toBeUndefined();
      });
      it("expires a verdict after its ttl", async () => {
        const [short, long] = [fresh("v"), fresh("v")];
        await s.verdictSet(short, "s", 40);
        await s.verdictSet(long, "l", 60_000);
        await t.advance(120);
        expect(await s.verdictGet(short)).toBeUndefined();
        expect(await s.verdictGet(long)).toBe("l");
      });
      it("deletes the verdicts named, ignoring absent ones and an empty list", async () => {
        const [a, b, c] = [fresh("v"), fresh("v"), fresh("v")];
        for (const k of [a, b, c]) await s.verdictSet(k, k, 60_000);
        await s.verdictDelete([a, b, fresh("v")]);
        await s.verdictDelete([]);
        expect([await s.verdictGet(a), await s.verdictGet(b), await s.verdictGet(c)]).toEqual([undefined, undefined, c]);
      });
      it("rejects a ttl of 0 with INVALID_ARGUMENT", async () => {
        expect((await rejectionOf(s.verdictSet(fresh("v"), "x", 0))).code).toBe(Code.InvalidArgument);
      });
    });

    it("fails every call with UNAVAILABLE once closed", async () => {
      await s.close();
      for (const call of [s.ping(), s.cacheGet("k"), s.verdictGet("k"), s.rateLimit({ key: "k", limit: 1, periodMs: 1_000 })]) {
        expect((await rejectionOf(call)).code).toBe(Code.Unavailable);
      }
    });
  });
}

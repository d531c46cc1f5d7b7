import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { RateLimitAlgorithm, RateLimitFailureMode, RateLimitFilterSchema } from "../../gen/mesh/gateway/v1/config_pb.js";
import { rejectionOf } from "../../test/support/rejection.js";
import type { FilterConfig } from "../config/resolved-config.js";
import { createEmbeddedState } from "../state/embedded.js";
import type { GatewayState } from "../state/port.js";
import { createRateLimiter, type RateSubject } from "./rate-limit.js";

const T0 = Date.UTC(2030, 0, 1);
const minute = durationFromMs(60_000);
const config = (failureMode = RateLimitFailureMode.FAIL_OPEN) => create(RateLimitFilterSchema, {
  algorithm: RateLimitAlgorithm.GCRA, failureMode, redisCommandTimeout: durationFromMs(100),
  apiKey: { limit: 5, period: minute, burst: 5 }, user: { limit: 3, period: minute, burst: 3 }, anonymous: { limit: 2, period: minute, burst: 2 },
}) as unknown as FilterConfig<"rateLimit">;

const user: RateSubject = { tier: "user", id: "alice" };
const fakeLogger = () => ({ warn: vi.fn(), info: vi.fn(), debug: vi.fn(), error: vi.fn() });
const asLogger = (l: ReturnType<typeof fakeLogger>) => l as unknown as Logger;
const headersOf = (h: Headers) => Object.fromEntries(h);
const unavailable = () => new ConnectError("redis down", Code.Unavailable);

// The limiter reads the wall clock for X-RateLimit-Reset; the state gets the same (fake) clock.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => { vi.useRealTimers(); });
const advance = (ms: number) => vi.setSystemTime(Date.now() + ms);

function limiter(mode?: RateLimitFailureMode, state: GatewayState = createEmbeddedState({ now: () => Date.now() })) {
  const logger = fakeLogger();
  return { logger, state, rl: createRateLimiter(config(mode), state, asLogger(logger)) };
}

/** `n` admissions; the headers of each. */
async function admitN(rl: ReturnType<typeof limiter>["rl"], n: number, subject = user, cost = 1, override?: { limit: number; periodMs: number }) {
  const out: Record<string, string>[] = [];
  for (let i = 0; i < n; i++) {
    const h = new Headers();
    await rl.admit(subject, cost, h, override);
    out.push(headersOf(h));
  }
  return out;
}

describe("rate limiter", () => {
  it("sets X-RateLimit-Limit, -Remaining and -Reset on allowed requests", async () => {
    const { rl } = limiter();
    expect(await admitN(rl, 3)).toEqual([
      { "x-ratelimit-limit": "3", "x-ratelimit-remaining": "2", "x-ratelimit-reset": "20" },
      { "x-ratelimit-limit": "3", "x-ratelimit-remaining": "1", "x-ratelimit-reset": "40" },
      { "x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "60" },
    ]);
  });

  it("refuses past the limit with RESOURCE_EXHAUSTED, RetryInfo and Retry-After", async () => {
    const { rl } = limiter();
    await admitN(rl, 3);
    advance(5_500);
    const h = new Headers();
    const err = await rejectionOf(rl.admit(user, 1, h));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).toBe(15n);
    expect(headersOf(h)).toEqual({ "x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "55", "retry-after": "15" });
    advance(14_500);
    expect(await admitN(rl, 1)).toEqual([{ "x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "60" }]);
  });

  it("limits each tier by its own limit", async () => {
    const { rl } = limiter();
    const limits = [];
    for (const tier of ["api_key", "user", "anonymous"] as const) limits.push((await admitN(rl, 1, { tier, id: "x" }))[0]?.["x-ratelimit-limit"]);
    expect(limits).toEqual(["5", "3", "2"]);
    await admitN(rl, 1, { tier: "anonymous", id: "x" });
    expect((await rejectionOf(rl.admit({ tier: "anonymous", id: "x" }, 1, new Headers()))).code).toBe(Code.ResourceExhausted);
  });

  it("keeps one budget per subject and tier", async () => {
    const { rl } = limiter();
    await admitN(rl, 3, user);
    expect((await admitN(rl, 1, { tier: "user", id: "bob" }))[0]?.["x-ratelimit-remaining"]).toBe("2");
    expect((await admitN(rl, 1, { tier: "api_key", id: "alice" }))[0]?.["x-ratelimit-remaining"]).toBe("4");
    // Same id, limit and period in another tier: still a budget of its own.
    expect((await admitN(rl, 1, { tier: "anonymous", id: "alice" }, 1, { limit: 3, periodMs: 60_000 }))[0]?.["x-ratelimit-remaining"]).toBe("2");
  });

  it("uses an override's limit and period instead of the tier's, in a budget of its own", async () => {
    const { rl } = limiter();
    const override = { limit: 10, periodMs: 10_000 };
    expect((await admitN(rl, 1, user, 1, override))[0]).toEqual({ "x-ratelimit-limit": "10", "x-ratelimit-remaining": "9", "x-ratelimit-reset": "1" });
    expect((await admitN(rl, 1, user))[0]?.["x-ratelimit-remaining"]).toBe("2");
  });

  it("spends the cost, capped at the limit", async () => {
    const { rl } = limiter();
    expect((await admitN(rl, 1, user, 2))[0]?.["x-ratelimit-remaining"]).toBe("1");
    expect((await admitN(rl, 1, { tier: "user", id: "bob" }, 10))[0]).toEqual({ "x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "60" });
    expect((await rejectionOf(rl.admit({ tier: "user", id: "bob" }, 1, new Headers()))).code).toBe(Code.ResourceExhausted);
  });
});

describe("rate limiter: shared store outages", () => {
  /** The embedded state whose rateLimit fails while `down` is set. */
  function flaky(error: () => Error = unavailable) {
    const real = createEmbeddedState({ now: () => Date.now() });
    const ctl = { down: true };
    const state: GatewayState = { ...real, rateLimit: vi.fn((req) => (ctl.down ? Promise.reject(error()) : real.rateLimit(req))) };
    return { ctl, state };
  }

  it("FAIL_OPEN decides with a local limiter, warns once, and says when sharing is back", async () => {
    const { ctl, state } = flaky();
    const { rl, logger } = limiter(RateLimitFailureMode.FAIL_OPEN, state);
    expect((await admitN(rl, 3)).map((h) => h["x-ratelimit-remaining"])).toEqual(["2", "1", "0"]);
    expect((await rejectionOf(rl.admit(user, 1, new Headers()))).code).toBe(Code.ResourceExhausted);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.info).not.toHaveBeenCalled();
    ctl.down = false;
    expect((await admitN(rl, 2)).map((h) => h["x-ratelimit-remaining"])).toEqual(["2", "1"]); // the shared bucket
    expect(logger.info).toHaveBeenCalledTimes(1);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it("FAIL_CLOSED refuses with UNAVAILABLE", async () => {
    const { state } = flaky();
    const { rl, logger } = limiter(RateLimitFailureMode.FAIL_CLOSED, state);
    const h = new Headers();
    expect((await rejectionOf(rl.admit(user, 1, h))).code).toBe(Code.Unavailable);
    expect((await rejectionOf(rl.admit(user, 1, h))).code).toBe(Code.Unavailable);
    expect(headersOf(h)).toEqual({});
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it.each([
    ["INVALID_ARGUMENT", () => new ConnectError("bad", Code.InvalidArgument)],
    ["INTERNAL", () => new ConnectError("bug", Code.Internal)],
    ["a plain error", () => new Error("boom")],
  ])("passes on %s from the store, in either mode, without falling back", async (_, error) => {
    for (const mode of [RateLimitFailureMode.FAIL_OPEN, RateLimitFailureMode.FAIL_CLOSED]) {
      const { state } = flaky(error);
      const { rl, logger } = limiter(mode, state);
      const err = await rejectionOf(rl.admit(user, 1, new Headers()));
      expect(err.code).toBe(ConnectError.from(error()).code);
      expect(logger.warn).not.toHaveBeenCalled();
    }
  });
});

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthService, RevokedTokenSchema, type RevokedToken, type WatchRevokedTokensRequest } from "../../gen/mesh/auth/v1/auth_pb.js";
import { watchRevokedTokens, type RevokedTokens } from "./revocations.js";

const T0 = Date.UTC(2030, 0, 1);
const revoked = (sequence: bigint, jti: string, expiresAtMs?: number) =>
  create(RevokedTokenSchema, { sequence, jti, ...(expiresAtMs !== undefined ? { expiresAt: timestampFromMs(expiresAtMs) } : {}) });

/** WatchRevokedTokens running one script per call (the last repeats), then idling until cancelled. */
function authService(scripts: ((req: WatchRevokedTokensRequest) => AsyncIterable<RevokedToken>)[]) {
  const requests: bigint[] = [];
  const signals: AbortSignal[] = [];
  const transport = createRouterTransport((router) => router.service(AuthService, {
    async *watchRevokedTokens(req: WatchRevokedTokensRequest, ctx: HandlerContext) {
      requests.push(req.afterSequence);
      signals.push(ctx.signal);
      const script = scripts[Math.min(requests.length - 1, scripts.length - 1)];
      if (script) for await (const token of script(req)) yield { token };
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    },
  }));
  return { requests, signals, transport };
}

let sets: RevokedTokens[] = [];
afterEach(() => {
  for (const s of sets) s.close();
  sets = [];
  vi.useRealTimers();
});

function setup(scripts: Parameters<typeof authService>[0]) {
  const clock = { t: T0 };
  const { requests, signals, transport } = authService(scripts);
  const logger = { warn: vi.fn(), info: vi.fn(), debug: vi.fn(), error: vi.fn() };
  const set = watchRevokedTokens(transport, logger as unknown as Logger, () => clock.t);
  sets.push(set);
  return { clock, requests, signals, set, logger };
}

describe("revoked tokens", () => {
  it("knows the revoked jtis the auth service announces", async () => {
    const { set } = setup([async function* () {
      yield revoked(1n, "j1", T0 + 60_000);
      yield revoked(2n, "j2");
    }]);
    await vi.waitFor(() => expect([set.has("j1"), set.has("j2")]).toEqual([true, true]));
    expect(set.has("j3")).toBe(false);
  });

  it("keeps what it knew while the stream is down and resumes after the last sequence", async () => {
    let restart!: () => void;
    const restarted = new Promise<void>((resolve) => { restart = resolve; });
    const { set, requests } = setup([
      async function* () {
        yield revoked(4n, "j4");
        yield revoked(5n, "j5");
        throw new ConnectError("auth restarting", Code.Unavailable);
      },
      async function* (req) {
        await restarted;
        if (req.afterSequence === 5n) yield revoked(6n, "j6");
      },
    ]);
    await vi.waitFor(() => expect(requests).toEqual([0n, 5n]));
    expect([set.has("j4"), set.has("j5"), set.has("j6")]).toEqual([true, true, false]);
    restart();
    await vi.waitFor(() => expect(set.has("j6")).toBe(true));
  });

  it("forgets entries once their token would have expired anyway", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { set, clock } = setup([async function* () {
      yield revoked(1n, "short", T0 + 30_000);
      yield revoked(2n, "long", T0 + 120_000);
      yield revoked(3n, "forever");
    }]);
    await vi.waitFor(() => expect(set.has("forever")).toBe(true));
    clock.t = T0 + 30_000;
    vi.advanceTimersByTime(60_000);
    expect([set.has("short"), set.has("long"), set.has("forever")]).toEqual([true, true, true]); // expiring now, not yet past
    clock.t = T0 + 30_001;
    vi.advanceTimersByTime(60_000);
    expect([set.has("short"), set.has("long"), set.has("forever")]).toEqual([false, true, true]);
    clock.t = T0 + 10 * 86_400_000;
    vi.advanceTimersByTime(60_000);
    expect([set.has("short"), set.has("long"), set.has("forever")]).toEqual([false, false, true]);
  });

  it("stops watching and pruning on close", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { set, requests, signals } = setup([async function* () { yield revoked(1n, "j1"); }]);
    await vi.waitFor(() => expect(set.has("j1")).toBe(true));
    expect(vi.getTimerCount()).toBe(1);
    set.close();
    expect(vi.getTimerCount()).toBe(0);
    await vi.waitFor(() => expect(signals[0]?.aborted).toBe(true));
    expect(requests).toEqual([0n]);
  });
});

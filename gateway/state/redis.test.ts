import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { describeWithServer, uniqueSchema } from "../../test/support/integration.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { gatewayStateContract } from "./contract.js";
import { openGatewayState } from "./open.js";
import { createRedisState, redisError } from "./redis.js";

// A real server (.ci/run starts one); each run keeps its keys under a prefix of its own, deleted afterwards.
describeWithServer("TEST_REDIS_URL", "GatewayState on Redis", (url) => {
  const keyPrefix = `${uniqueSchema("gw")}:`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  afterAll(async () => {
    const keys = await admin.keys(`${keyPrefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  gatewayStateContract("Redis", async () => ({
    state: await openGatewayState({ url, keyPrefix }),
    now: Date.now,
    advance: (ms) => sleep(ms), // Redis expires by its own clock: only real time moves it
    clockSlackMs: 10,
  }));

  it("openGatewayState with a URL opens the Redis adapter", async () => {
    const state = await openGatewayState({ url, keyPrefix });
    expect(state.kind).toBe("redis");
    await state.close();
  });

  it("keeps its keys under the key prefix", async () => {
    const state = await openGatewayState({ url, keyPrefix });
    try {
      await state.cacheSet("prefixed", Buffer.from("x"), 60_000, ["prefixed-tag"]);
      await state.verdictSet("prefixed", "x", 60_000);
      await state.rateLimit({ key: "prefixed", limit: 5, periodMs: 60_000 });
      const keys = ["c:prefixed", "t:prefixed-tag", "v:prefixed", "rl:prefixed"].map((k) => keyPrefix + k);
      expect(await admin.exists(...keys)).toBe(4);
    } finally {
      await state.close();
    }
  });

  it("gives a tag set a TTL at least its longest entry's", async () => {
    const state = await openGatewayState({ url, keyPrefix });
    try {
      await state.cacheSet("ttl-long", Buffer.from("x"), 50_000, ["ttl-tag"]);
      await state.cacheSet("ttl-short", Buffer.from("x"), 1_000, ["ttl-tag"]);
      expect(await admin.pttl(`${keyPrefix}t:ttl-tag`)).toBeGreaterThan(49_000);
    } finally {
      await state.close();
    }
  });

  it("prunes a tag set of entries that expired, as later entries are stored", async () => {
    const state = await openGatewayState({ url, keyPrefix });
    try {
      for (let i = 0; i < 20; i++) await state.cacheSet(`prune-old-${i}`, Buffer.from("x"), 20, ["prune-tag"]);
      await sleep(60);
      for (let i = 0; i < 30; i++) await state.cacheSet(`prune-new-${i}`, Buffer.from("x"), 60_000, ["prune-tag"]);
      // Two random members are checked per write; with 20 dead of 21 at first, nearly all go.
      expect(await admin.scard(`${keyPrefix}t:prune-tag`)).toBeLessThan(40);
      expect(await state.cacheInvalidate("prune-tag")).toBe(30);
    } finally {
      await state.close();
    }
  });

  it("admits exactly `limit` of a concurrent burst split across two clients", async () => {
    const [a, b] = await Promise.all([openGatewayState({ url, keyPrefix }), openGatewayState({ url, keyPrefix })]);
    try {
      const key = `burst-${Date.now()}`;
      const decide = (s: typeof a) => s.rateLimit({ key, limit: 50, periodMs: 60_000 });
      const decisions = await Promise.all(Array.from({ length: 200 }, (_, i) => decide(i % 2 === 0 ? a : b)));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(50);
      expect(decisions.filter((d) => !d.allowed).every((d) => d.remaining === 0 && d.retryAfterMs > 0)).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("reloads its scripts when the server has forgotten them (NOSCRIPT)", async () => {
    const state = await openGatewayState({ url, keyPrefix });
    try {
      expect((await state.rateLimit({ key: "noscript", limit: 2, periodMs: 60_000 })).remaining).toBe(1);
      await admin.script("FLUSH");
      expect((await state.rateLimit({ key: "noscript", limit: 2, periodMs: 60_000 })).remaining).toBe(0);
      expect(await state.cacheInvalidate("noscript-tag")).toBe(0);
    } finally {
      await state.close();
    }
  });
});

describe("createRedisState", () => {
  it("throws INTERNAL for a malformed URL", () => {
    expect(() => createRedisState("not a url")).toThrow(expect.objectContaining({ code: Code.Internal }));
  });
});

describe("redisError", () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: "ReplyError" });
  it.each([
    ["a command timeout", new Error("Command timed out"), Code.Unavailable],
    ["a call while disconnected", new Error("Stream isn't writeable and enableOfflineQueue options is false"), Code.Unavailable],
    ["a closed connection", new Error("Connection is closed."), Code.Unavailable],
    ["a dead socket", new Error("Socket timeout. Expecting data, but didn't receive any in 1000ms."), Code.Unavailable],
    ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), Code.Unavailable],
    ["the retry limit", Object.assign(new Error("Reached the max retries per request limit"), { name: "MaxRetriesPerRequestError" }), Code.Unavailable],
    ["a server loading its dataset", reply("LOADING Redis is loading the dataset in memory"), Code.Unavailable],
    ["a server busy with a script", reply("BUSY Redis is busy running a script."), Code.Unavailable],
    ["a read-only replica", reply("READONLY You can't write against a read only replica."), Code.Unavailable],
    ["a server out of memory", reply("OOM command not allowed when used memory > 'maxmemory'."), Code.Unavailable],
    ["a script error", reply("ERR user_script:1: Script attempted to access nonexistent global variable"), Code.Internal],
    ["a wrong type", reply("WRONGTYPE Operation against a key holding the wrong kind of value"), Code.Internal],
    ["any other error", new Error("boom"), Code.Internal],
  ])("maps %s", (_, err, code) => {
    const mapped = redisError(err);
    expect(mapped.code).toBe(code);
    expect(mapped.cause).toBe(err);
    expect(mapped.rawMessage).not.toContain(err.message);
  });
  it("passes a ConnectError through", () => {
    const err = new ConnectError("x", Code.InvalidArgument);
    expect(redisError(err)).toBe(err);
  });
});

import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { describe, expect, it, vi } from "vitest";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createEmbeddedState } from "../state/embedded.js";
import type { GatewayState } from "../state/port.js";
import { bindingsOf, type HttpBinding } from "../transcoding/bindings.js";
import { canonicalPath, type CanonicalPath } from "../transcoding/path.js";
import type { Admitted } from "./admission.js";
import { createResponseCache, type CachedReply } from "./cache.js";

const bindings = bindingsOf([AuthService, ProjectService, LoggingService]);
const bindingOf = (method: DescMethod, verb: string) => {
  const b = bindings.find((x) => x.method === method && x.verb === verb);
  if (!b) throw new Error(`no ${verb} binding for ${method.name}`);
  return b;
};
const getJwks = bindingOf(AuthService.method.getJwks, "GET"); // PUBLIC, cache_ttl_seconds 60
const getProject = bindingOf(ProjectService.method.getProject, "GET"); // USER, no TTL
const createProject = bindingOf(ProjectService.method.createProject, "POST");
const tailLogs = bindingOf(LoggingService.method.tailLogs, "GET"); // server streaming

const path = (raw: string): CanonicalPath => {
  const p = canonicalPath(raw);
  if (p.kind !== "canonical") throw new Error(p.message);
  return p;
};
const caller = (tier: Admitted["subject"]["tier"], id: string): Admitted => ({ subject: { tier, id } });
const alice = caller("user", "alice");
const bob = caller("user", "bob");
const reply = (status = 200, body = '{"id":"p1"}'): CachedReply => ({ status, body });
const fakeLogger = () => ({ warn: vi.fn(), info: vi.fn(), debug: vi.fn(), error: vi.fn() });

function cache(o: { state?: GatewayState; maxEntryBytes?: number; defaultTtlMs?: number } = {}) {
  const clock = { t: 1_000_000 };
  const state = o.state ?? createEmbeddedState({ now: () => clock.t });
  const logger = fakeLogger();
  const c = createResponseCache({ state, logger: logger as unknown as Logger, maxEntryBytes: o.maxEntryBytes ?? 1024, defaultTtlMs: o.defaultTtlMs ?? 0 });
  return { c, state, clock, logger };
}

describe("response cache: TTL", () => {
  it.each<[string, HttpBinding, number, number]>([
    ["a GET with a policy TTL", getJwks, 0, 60_000],
    ["a GET with a policy TTL, whatever the default", getJwks, 5_000, 60_000],
    ["a GET without one, with no default", getProject, 0, 0],
    ["a GET without one, with a default", getProject, 5_000, 5_000],
    ["a POST", createProject, 5_000, 0],
    ["a server-streaming GET", tailLogs, 5_000, 0],
  ])("gives %s (default %i ms) a TTL of %i ms", (_, binding, defaultTtlMs, ttl) => {
    expect(cache({ defaultTtlMs }).c.ttlMs(binding)).toBe(ttl);
  });
});

describe("response cache: keys and tags", () => {
  const { c } = cache();
  const q = (s: string) => new URLSearchParams(s);

  it("keys a non-public route by caller", () => {
    const p = path("/api/v1/projects/p1");
    expect(c.keyOf(getProject, p, q(""), alice)).not.toBe(c.keyOf(getProject, p, q(""), bob));
    expect(c.keyOf(getProject, p, q(""), alice)).not.toBe(c.keyOf(getProject, p, q(""), caller("api_key", "alice")));
    expect(c.keyOf(getProject, p, q(""), alice)).toBe(c.keyOf(getProject, p, q(""), caller("user", "alice")));
  });

  it("shares a public route's key between callers", () => {
    const p = path("/.well-known/jwks.json");
    expect(c.keyOf(getJwks, p, q(""), alice)).toBe(c.keyOf(getJwks, p, q(""), caller("anonymous", "203.0.113.9")));
  });

  it("ignores the order of query parameters, but not their values or repeats", () => {
    const p = path("/api/v1/projects/p1");
    const key = c.keyOf(getProject, p, q("a=1&b=2&a=0"), alice);
    expect(c.keyOf(getProject, p, q("b=2&a=0&a=1"), alice)).toBe(key);
    expect(c.keyOf(getProject, p, q("a=1&b=3&a=0"), alice)).not.toBe(key);
    expect(c.keyOf(getProject, p, q("a=1&b=2"), alice)).not.toBe(key);
  });

  it("keys by path and route", () => {
    expect(c.keyOf(getProject, path("/api/v1/projects/p1"), q(""), alice)).not.toBe(c.keyOf(getProject, path("/api/v1/projects/p2"), q(""), alice));
    expect(c.keyOf(getProject, path("/api/v1/projects/p1"), q(""), alice)).toBe(c.keyOf(getProject, path("/api/v1/projects/p1/"), q(""), alice));
  });

  it("hashes the key, so no caller id or path appears in the store", () => {
    expect(c.keyOf(getProject, path("/api/v1/projects/p1"), q("x=secret"), alice)).toMatch(/^cache:[0-9a-f]{64}$/);
  });

  it("tags by caller and the resource collection", () => {
    expect(c.tagOf(path("/api/v1/projects/p1/keys"), alice)).toBe("user:alice|/api/v1/projects");
    expect(c.tagOf(path("/api/v1/projects"), caller("api_key", "k1"))).toBe("api_key:k1|/api/v1/projects");
  });
});

describe("response cache: store", () => {
  it("stores a 2xx reply until its TTL passes", async () => {
    const { c, clock } = cache();
    await c.put("k", reply(201), 1_000, "t");
    expect(await c.get("k")).toEqual(reply(201));
    clock.t += 1_000;
    expect(await c.get("k")).toBeUndefined();
  });

  it.each([[199, false], [200, true], [299, true], [300, false], [304, false], [404, false], [500, false]])("stores status %d: %s", async (status, stored) => {
    const { c } = cache();
    await c.put("k", reply(status), 1_000, "t");
    expect(await c.get("k")).toEqual(stored ? reply(status) : undefined);
  });

  it("refuses a TTL of 0", async () => {
    const { c } = cache();
    await c.put("k", reply(), 0, "t");
    expect(await c.get("k")).toBeUndefined();
  });

  it("stores a reply up to the size limit and refuses a larger one", async () => {
    const size = (r: CachedReply) => Buffer.byteLength(r.body);
    const fits = reply(200, "x".repeat(100));
    expect(size(fits)).toBe(100);
    const { c } = cache({ maxEntryBytes: 100 });
    await c.put("fits", fits, 1_000, "t");
    await c.put("big", { ...fits, body: `${fits.body}é` }, 1_000, "t");
    expect([await c.get("fits"), await c.get("big")]).toEqual([fits, undefined]);
  });

  it("drops the entries of one tag on invalidate", async () => {
    const { c } = cache();
    await c.put("a1", reply(), 10_000, "user:alice|/api/v1/projects");
    await c.put("a2", reply(), 10_000, "user:alice|/api/v1/projects");
    await c.put("b1", reply(), 10_000, "user:bob|/api/v1/projects");
    await c.invalidate("user:alice|/api/v1/projects");
    expect([await c.get("a1"), await c.get("a2"), await c.get("b1")]).toEqual([undefined, undefined, reply()]);
  });

  it("treats a state outage as a miss, a skipped write and a skipped invalidation", async () => {
    const down = () => Promise.reject(new ConnectError("redis down", Code.Unavailable));
    const state: GatewayState = { ...createEmbeddedState(), cacheGet: vi.fn(down), cacheSet: vi.fn(down), cacheInvalidate: vi.fn(down) };
    const { c, logger } = cache({ state });
    await expect(c.get("k")).resolves.toBeUndefined();
    await expect(c.put("k", reply(), 1_000, "t")).resolves.toBeUndefined();
    await expect(c.invalidate("t")).resolves.toBeUndefined();
    expect([state.cacheGet, state.cacheSet, state.cacheInvalidate].map((f) => vi.mocked(f).mock.calls.length)).toEqual([1, 1, 1]);
    expect(logger.debug).toHaveBeenCalledTimes(2);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });
});

describe("response cache: coalescing", () => {
  it("runs one fill for concurrent callers of a key, and a new one once it settled", async () => {
    const { c } = cache();
    let release!: (r: CachedReply) => void;
    const fill = vi.fn(() => new Promise<CachedReply>((resolve) => { release = resolve; }));
    const all = Promise.all([c.coalesce("k", fill), c.coalesce("k", fill), c.coalesce("k", fill)]);
    const other = c.coalesce("other", async () => reply(200, "other"));
    release(reply());
    expect(await all).toEqual([{ reply: reply(), leader: true }, { reply: reply(), leader: false }, { reply: reply(), leader: false }]);
    expect(await other).toEqual({ reply: reply(200, "other"), leader: true });
    expect(fill).toHaveBeenCalledTimes(1);
    const again = c.coalesce("k", fill);
    release(reply(200, "second"));
    expect(await again).toEqual({ reply: reply(200, "second"), leader: true });
    expect(fill).toHaveBeenCalledTimes(2);
  });

  it("gives a fill's error to every waiting caller, and fills afresh afterwards", async () => {
    const { c } = cache();
    let fail!: (e: Error) => void;
    const fill = vi.fn(() => new Promise<CachedReply>((_, reject) => { fail = reject; }));
    const waits = [c.coalesce("k", fill), c.coalesce("k", fill)].map((p) => p.then(() => "resolved", (e: unknown) => e));
    const boom = new ConnectError("upstream down", Code.Unavailable);
    fail(boom);
    expect(await Promise.all(waits)).toEqual([boom, boom]);
    expect(fill).toHaveBeenCalledTimes(1);
    expect(await c.coalesce("k", async () => reply())).toEqual({ reply: reply(), leader: true });
  });
});

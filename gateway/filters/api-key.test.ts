import { createHash } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  KeyEventKind, KeyEventSchema, ProjectService, VerifiedKeySchema,
  type VerifyApiKeyRequest, type VerifyApiKeyResponseSchema, type WatchKeyEventsRequest, type WatchKeyEventsResponse,
} from "../../gen/mesh/project/v1/project_pb.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { createEmbeddedState } from "../state/embedded.js";
import type { GatewayState } from "../state/port.js";
import { createApiKeyVerifier, type ApiKeyVerifier } from "./api-key.js";

const T0 = Date.UTC(2030, 0, 1);
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const fakeLogger = () => ({ warn: vi.fn(), info: vi.fn(), debug: vi.fn(), error: vi.fn() });

interface Key { id: string; projectId: string; userId: string; expiresAtMs?: number }

/** The project service as far as the verifier sees it: keys by plaintext, and a key-event stream the test drives. */
function projectService() {
  const keys = new Map<string, Key>();
  const svc = {
    keys,
    down: false,
    /** When set, answers are decided at once but sent only when it resolves (an answer in flight). */
    hold: undefined as Promise<void> | undefined,
    verifyCalls: [] as string[],
    watchRequests: [] as bigint[],
    /** Each WatchKeyEvents call runs the next script (the last one repeats). */
    scripts: [] as ((req: WatchKeyEventsRequest, ctx: HandlerContext) => AsyncIterable<Partial<WatchKeyEventsResponse>>)[],
    add(plaintext: string, key: Key) { keys.set(sha256(plaintext), key); },
  };
  const transport = createRouterTransport((router) => router.service(ProjectService, {
    async verifyApiKey(req: VerifyApiKeyRequest): Promise<MessageInitShape<typeof VerifyApiKeyResponseSchema>> {
      svc.verifyCalls.push(req.keyHash);
      if (svc.down) throw new ConnectError("db down", Code.Unavailable);
      const k = keys.get(req.keyHash);
      await svc.hold;
      if (!k) return { valid: false };
      return {
        valid: true,
        key: create(VerifiedKeySchema, { id: k.id, projectId: k.projectId, userId: k.userId, name: "ci",
          ...(k.expiresAtMs !== undefined ? { expiresAt: timestampFromMs(k.expiresAtMs) } : {}) }),
      };
    },
    async *watchKeyEvents(req: WatchKeyEventsRequest, ctx: HandlerContext) {
      svc.watchRequests.push(req.afterVersion);
      const script = svc.scripts[Math.min(svc.watchRequests.length - 1, svc.scripts.length - 1)];
      if (script) yield* script(req, ctx);
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    },
  }));
  return { svc, transport };
}

const keyEvent = (version: bigint, plaintext: string, keyId: string) => ({
  event: create(KeyEventSchema, { version, kind: KeyEventKind.REVOKED, keyId, keyHash: sha256(plaintext), projectId: "p1" }),
});

let verifiers: ApiKeyVerifier[] = [];
afterEach(() => {
  for (const v of verifiers) v.close();
  verifiers = [];
});

function setup(o: { state?: GatewayState; positiveTtlMs?: number; negativeTtlMs?: number } = {}) {
  const clock = { t: T0 };
  const { svc, transport } = projectService();
  const state = o.state ?? createEmbeddedState({ now: () => clock.t });
  const logger = fakeLogger();
  const verifier = createApiKeyVerifier({
    transport, state, logger: logger as unknown as Logger, now: () => clock.t,
    positiveTtlMs: o.positiveTtlMs ?? 60_000, negativeTtlMs: o.negativeTtlMs ?? 10_000,
  });
  verifiers.push(verifier);
  svc.add("gw_alpha", { id: "k-alpha", projectId: "p1", userId: "owner-1" });
  return { clock, svc, state, logger, verifier };
}

describe("API-key verifier", () => {
  it("answers a valid key's identity, asking the project service with the key's hash", async () => {
    const { svc, verifier } = setup();
    expect(await verifier.verify("gw_alpha")).toEqual({ keyId: "k-alpha", projectId: "p1", userId: "owner-1" });
    expect(svc.verifyCalls).toEqual([sha256("gw_alpha")]);
  });

  it("caches a positive verdict for its TTL", async () => {
    const { clock, svc, verifier } = setup();
    await verifier.verify("gw_alpha");
    clock.t += 59_999;
    expect(await verifier.verify("gw_alpha")).toMatchObject({ keyId: "k-alpha" });
    expect(svc.verifyCalls).toHaveLength(1);
    clock.t += 1;
    await verifier.verify("gw_alpha");
    expect(svc.verifyCalls).toHaveLength(2);
  });

  it("caches a negative verdict for its (shorter) TTL", async () => {
    const { clock, svc, verifier } = setup();
    expect(await verifier.verify("gw_unknown")).toBeUndefined();
    clock.t += 9_999;
    expect(await verifier.verify("gw_unknown")).toBeUndefined();
    expect(svc.verifyCalls).toHaveLength(1);
    clock.t += 1;
    svc.add("gw_unknown", { id: "k-new", projectId: "p1", userId: "owner-1" });
    expect(await verifier.verify("gw_unknown")).toMatchObject({ keyId: "k-new" });
    expect(svc.verifyCalls).toHaveLength(2);
  });

  it("never caches a verdict past the key's expiry", async () => {
    const { clock, svc, verifier } = setup();
    svc.add("gw_short", { id: "k-short", projectId: "p1", userId: "owner-1", expiresAtMs: T0 + 5_000 });
    await verifier.verify("gw_short");
    clock.t += 4_999;
    await verifier.verify("gw_short");
    expect(svc.verifyCalls).toHaveLength(1);
    clock.t += 1;
    svc.keys.delete(sha256("gw_short")); // expired now: the service says so
    expect(await verifier.verify("gw_short")).toBeUndefined();
    expect(svc.verifyCalls).toHaveLength(2);
  });

  it("does not cache a key the service still calls valid at its expiry instant", async () => {
    const { svc, verifier } = setup();
    svc.add("gw_edge", { id: "k-edge", projectId: "p1", userId: "owner-1", expiresAtMs: T0 });
    expect(await verifier.verify("gw_edge")).toMatchObject({ keyId: "k-edge" });
    await verifier.verify("gw_edge");
    expect(svc.verifyCalls).toHaveLength(2);
  });

  it("stores verdicts under the key's hash, never the plaintext", async () => {
    const real = createEmbeddedState();
    const state: GatewayState = { ...real, verdictSet: vi.fn(real.verdictSet), verdictGet: vi.fn(real.verdictGet) };
    const { verifier } = setup({ state });
    await verifier.verify("gw_alpha");
    await verifier.verify("gw_nope");
    const written = JSON.stringify([vi.mocked(state.verdictSet).mock.calls, vi.mocked(state.verdictGet).mock.calls]);
    expect(written).not.toMatch(/gw_alpha|gw_nope/);
    expect(vi.mocked(state.verdictSet).mock.calls.map((c) => c[0])).toEqual([`apikey:${sha256("gw_alpha")}`, `apikey:${sha256("gw_nope")}`]);
  });

  it("answers UNAVAILABLE when the project service fails, and caches nothing", async () => {
    const { svc, verifier } = setup();
    svc.down = true;
    expect((await rejectionOf(verifier.verify("gw_alpha"))).code).toBe(Code.Unavailable);
    svc.down = false;
    expect(await verifier.verify("gw_alpha")).toMatchObject({ keyId: "k-alpha" });
    expect(svc.verifyCalls).toHaveLength(2);
  });

  it("asks the project service when the verdict cache is down", async () => {
    const down = () => Promise.reject(new ConnectError("redis down", Code.Unavailable));
    const { svc, verifier } = setup({ state: { ...createEmbeddedState(), verdictGet: down, verdictSet: down } });
    expect(await verifier.verify("gw_alpha")).toMatchObject({ keyId: "k-alpha" });
    expect(await verifier.verify("gw_nope")).toBeUndefined();
    expect(svc.verifyCalls).toHaveLength(2);
  });
});

/** Starts the verifier's watch on a stream whose one event (gw_alpha revoked) is sent when the answer is called. */
async function watchingHeldEvent(svc: ReturnType<typeof setup>["svc"], verifier: ReturnType<typeof setup>["verifier"]): Promise<() => void> {
  let announce!: () => void;
  const announced = new Promise<void>((resolve) => { announce = resolve; });
  svc.scripts = [async function* () {
    await announced;
    yield keyEvent(1n, "gw_alpha", "k-alpha");
  }];
  verifier.watch();
  await vi.waitFor(() => expect(svc.watchRequests).toEqual([0n]));
  return announce;
}

describe("API-key verifier: key events", () => {
  it("drops the cached verdict of a key named by an event", async () => {
    const { svc, verifier } = setup();
    svc.add("gw_beta", { id: "k-beta", projectId: "p1", userId: "owner-1" });
    await verifier.verify("gw_alpha");
    await verifier.verify("gw_beta");
    const announce = await watchingHeldEvent(svc, verifier);
    svc.keys.delete(sha256("gw_alpha")); // revoked
    announce();
    await vi.waitFor(async () => expect(await verifier.verify("gw_alpha")).toBeUndefined());
    expect(await verifier.verify("gw_beta")).toMatchObject({ keyId: "k-beta" });
    expect(svc.verifyCalls.filter((h) => h === sha256("gw_beta"))).toHaveLength(1);
  });

  it("does not let a valid answer that was in flight when the key's revocation arrived be served or cached", async () => {
    const { svc, verifier } = setup();
    const announce = await watchingHeldEvent(svc, verifier);
    let release!: () => void;
    svc.hold = new Promise<void>((resolve) => { release = resolve; });
    const inFlight = verifier.verify("gw_alpha"); // decided "valid" before the revocation
    await vi.waitFor(() => expect(svc.verifyCalls).toHaveLength(1));
    svc.keys.delete(sha256("gw_alpha"));
    announce();
    await new Promise((r) => setTimeout(r, 20)); // the event is applied
    release();
    svc.hold = undefined;
    expect(await inFlight).toBeUndefined();
    expect(await verifier.verify("gw_alpha")).toBeUndefined();
    expect(svc.verifyCalls).toHaveLength(2); // nothing positive was cached
  });

  it("resumes after the last version it saw when the stream breaks", async () => {
    const { svc, verifier, logger } = setup();
    svc.add("gw_beta", { id: "k-beta", projectId: "p1", userId: "owner-1" });
    await verifier.verify("gw_beta");
    svc.scripts = [
      async function* () {
        yield keyEvent(7n, "gw_gamma", "k-gamma");
        throw new ConnectError("project service restarting", Code.Unavailable);
      },
      async function* (req) {
        if (req.afterVersion === 7n) yield keyEvent(8n, "gw_beta", "k-beta");
      },
    ];
    verifier.watch();
    await vi.waitFor(() => expect(svc.watchRequests).toEqual([0n, 7n]));
    svc.keys.delete(sha256("gw_beta"));
    await vi.waitFor(async () => expect(await verifier.verify("gw_beta")).toBeUndefined());
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it("stops following events on close", async () => {
    const { svc, verifier } = setup();
    let signal: AbortSignal | undefined;
    svc.scripts = [async function* (_, ctx) { signal = ctx.signal; }];
    verifier.watch();
    await vi.waitFor(() => expect(signal).toBeDefined());
    verifier.close();
    await vi.waitFor(() => expect(signal?.aborted).toBe(true));
    expect(svc.watchRequests).toEqual([0n]);
  });
});

import { Code } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithServer, uniqueSchema } from "../../test/support/integration.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { useGlobalTracing } from "../../test/support/tracing.js";
import { openGatewayState } from "./open.js";
import type { GatewayState } from "./port.js";

// This file owns the process-global OpenTelemetry registration (vitest runs each file in a worker of its own).
const tracing = useGlobalTracing();

const SECRET = "s3cret-verdict";

// A real server (.ci/run starts one); the run keeps its keys under a prefix of its own, deleted afterwards.
describeWithServer("TEST_REDIS_URL", "Redis spans", (url) => {
  const keyPrefix = `${uniqueSchema("gw_tracing")}:`;
  // Parsed when a test runs: a skipped suite's body still runs, with an empty URL.
  const server = () => {
    const target = new URL(url);
    return { "db.system.name": "redis", "db.namespace": "0", "server.address": target.hostname, "server.port": Number(target.port || 6379) };
  };
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let state: GatewayState;
  beforeAll(async () => { state = await openGatewayState({ url, keyPrefix }); });
  afterAll(async () => {
    await state?.close();
    const keys = await admin.keys(`${keyPrefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it("gives each command a CLIENT span under the caller's span, named by the command, without its arguments", async () => {
    const { parent, children } = await tracing.inSpan(async () => {
      await state.verdictSet(SECRET, SECRET, 60_000);
      await state.verdictGet(SECRET);
      await state.cacheGet(SECRET);
      await state.cacheSet(SECRET, Buffer.from(SECRET), 60_000, [SECRET]);
      await state.rateLimit({ key: SECRET, limit: 5, periodMs: 60_000 });
      await state.cacheInvalidate(SECRET);
      await state.verdictDelete([SECRET]);
      await state.ping();
    });
    expect(children.map((s) => s.name)).toEqual(["SET", "GET", "HMGET", "EVALSHA", "EVALSHA", "EVALSHA", "DEL", "PING"]);
    for (const s of children) {
      expect(s.kind, s.name).toBe(SpanKind.CLIENT);
      expect(s.spanContext().traceId, s.name).toBe(parent.traceId);
      expect(s.status.code, s.name).toBe(SpanStatusCode.UNSET);
      expect(s.attributes, s.name).toEqual({ ...server(), "db.operation.name": s.name });
    }
    expect(JSON.stringify(children.map((s) => [s.attributes, s.events]))).not.toContain(SECRET);
  });

  it("parents each auto-pipelined command to its own caller's span, once", async () => {
    // Issued in one tick, so ioredis writes them in one pipeline, flushed from the first caller's context.
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => tracing.inSpan(() => state.verdictGet(`concurrent-${i}`))));
    for (const { parent, children } of results) {
      expect(children.map((s) => [s.name, s.spanContext().traceId])).toEqual([["GET", parent.traceId]]);
    }
    expect(tracing.finished().filter((s) => s.kind === SpanKind.CLIENT)).toHaveLength(5);
  });

  it("marks a failed command ERROR with the server's error prefix and records the exception", async () => {
    await admin.set(`${keyPrefix}c:wrong-type`, "a string, not a hash");
    let code: Code | undefined;
    const { children } = await tracing.inSpan(async () => {
      code = (await rejectionOf(state.cacheGet("wrong-type"))).code;
    });
    expect(code).toBe(Code.Internal); // the adapter's error mapping still applies
    expect(children.map((s) => [s.name, s.status.code, s.attributes["error.type"]])).toEqual([["HMGET", SpanStatusCode.ERROR, "WRONGTYPE"]]);
    expect(children[0]?.events.map((e) => e.name)).toEqual(["exception"]);
  });

  it("makes no span without an active span", async () => {
    await state.verdictGet("background");
    await state.rateLimit({ key: "background", limit: 5, periodMs: 60_000 });
    expect(tracing.finished()).toEqual([]);
  });

  it("makes no span under an active span that does not record", async () => {
    await tracing.inUnsampledSpan(async () => {
      await state.verdictGet("unsampled");
      await state.rateLimit({ key: "unsampled", limit: 5, periodMs: 60_000 });
    });
    expect(tracing.finished()).toEqual([]);
  });
});

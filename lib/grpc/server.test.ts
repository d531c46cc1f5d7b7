import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, createServiceImplSpec, type Interceptor } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogRecordSchema, LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { fieldViolationsOf, invalidArgument } from "../errors.js";
import { createGrpcServer, type GrpcServer } from "./server.js";
import { createGrpcTransport, type GrpcTransport } from "./transport.js";

// The logging contract offers every RPC kind the adapter must carry: unary,
// server streaming and client streaming. The implementation here is a test
// double of the handlers only; the server, codecs and transport are real.
const tagResponse: Interceptor = (next) => async (req) => {
  const res = await next(req);
  res.header.set("x-intercepted", req.method.name);
  return res;
};

/** Why each getLog call's signal was aborted, by the call's request id. */
const abortReasons = new Map<string, Code | string>();

const impl = {
  ingestLog(req: { log?: { requestId: string } }, ctx: { requestHeader: Headers; responseHeader: Headers; responseTrailer: Headers }) {
    if (!req.log?.requestId) throw invalidArgument([{ field: "log.request_id", description: "required" }]);
    ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-request-id") ?? "");
    ctx.responseTrailer.set("x-trailer", "t");
    return { message: `Log ingested ${req.log.requestId}` };
  },
  async getLog(req: { requestId: string }, ctx: { signal: AbortSignal }) {
    await sleep(2_000, undefined, { signal: ctx.signal }).catch(() => undefined);
    abortReasons.set(req.requestId, ctx.signal.aborted ? ConnectError.from(ctx.signal.reason).code : "not aborted");
    return {};
  },
  async *tailLogs(req: { userId: string }, ctx: { signal: AbortSignal }) {
    for (let i = 0; i < 3; i++) yield { log: { requestId: `${req.userId}-${i}` } };
    if (req.userId === "forever") await sleep(60_000, undefined, { signal: ctx.signal }).catch(() => undefined);
    if (req.userId === "fail") throw new ConnectError("tail broke", Code.DataLoss);
  },
  async ingestLogStream(reqs: AsyncIterable<{ logs: unknown[] }>) {
    let ingested = 0;
    for await (const r of reqs) ingested += r.logs.length;
    return { ingested };
  },
};

describe("gRPC server and transport", () => {
  let server: GrpcServer;
  let transport: GrpcTransport;
  let client: ReturnType<typeof createClient<typeof LoggingService>>;

  beforeAll(async () => {
    server = createGrpcServer({
      services: [createServiceImplSpec(LoggingService, impl as never)],
      interceptors: [tagResponse],
    });
    const port = await server.listen("127.0.0.1", 0);
    transport = createGrpcTransport({ address: `127.0.0.1:${port}` });
    client = createClient(LoggingService, transport);
  });
  afterAll(async () => {
    transport.close();
    await server.shutdown(1_000);
  });

  it("round-trips a unary call with request metadata, response headers and trailers", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const res = await client.ingestLog(
      { log: create(LogRecordSchema, { requestId: "r1" }) },
      { headers: { "x-request-id": "abc" }, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
    );
    expect(res.message).toBe("Log ingested r1");
    expect(header?.get("x-echo")).toBe("abc");
    expect(header?.get("x-intercepted")).toBe("IngestLog");
    expect(trailer?.get("x-trailer")).toBe("t");
  });

  it("carries an error's code, message and field violations to the client", async () => {
    const err = await client.ingestLog({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toBe("log.request_id: required");
    expect(fieldViolationsOf(err)).toEqual([{ field: "log.request_id", description: "required" }]);
  });

  it("answers UNIMPLEMENTED for a method the implementation lacks", async () => {
    const err = await client.queryLogs({}).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unimplemented);
  });

  it("fails a call that outlives its deadline with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const err = await client.getLog({}, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it("aborts the handler's signal with DEADLINE_EXCEEDED at the deadline and CANCELLED when the caller gives up", async () => {
    await client.getLog({ requestId: "deadline" }, { timeoutMs: 100 }).catch(() => undefined);
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 100);
    await client.getLog({ requestId: "cancel" }, { signal: ctrl.signal }).catch(() => undefined);
    await expect.poll(() => abortReasons.has("deadline") && abortReasons.has("cancel")).toBe(true);
    expect(abortReasons.get("deadline")).toBe(Code.DeadlineExceeded);
    expect(abortReasons.get("cancel")).toBe(Code.Canceled);
  });

  it("streams every server message in order", async () => {
    const ids: string[] = [];
    for await (const m of client.tailLogs({ userId: "u" })) ids.push(m.log?.requestId ?? "");
    expect(ids).toEqual(["u-0", "u-1", "u-2"]);
  });

  it("delivers a stream's messages and then its error", async () => {
    const ids: string[] = [];
    const err = await (async () => {
      for await (const m of client.tailLogs({ userId: "fail" })) ids.push(m.log?.requestId ?? "");
    })().catch((e: unknown) => e);
    expect(ids).toHaveLength(3);
    expect(ConnectError.from(err).code).toBe(Code.DataLoss);
  });

  it("collects a client stream", async () => {
    async function* batches() {
      for (let i = 0; i < 5; i++) yield { logs: [create(LogRecordSchema, { requestId: `b${i}` }), create(LogRecordSchema)] };
    }
    const res = await client.ingestLogStream(batches());
    expect(res.ingested).toBe(10);
  });

  it("lets the caller cancel a stream", async () => {
    const ctrl = new AbortController();
    const seen: string[] = [];
    const err = await (async () => {
      for await (const m of client.tailLogs({ userId: "forever" }, { signal: ctrl.signal })) {
        seen.push(m.log?.requestId ?? "");
        if (seen.length === 3) ctrl.abort();
      }
    })().catch((e: unknown) => e);
    expect(seen).toHaveLength(3);
    expect(ConnectError.from(err).code).toBe(Code.Canceled);
  });

  it("runs the same implementation and interceptors in memory through createRouterTransport", async () => {
    const mem = createClient(LoggingService, createRouterTransport(
      ({ service }) => service(LoggingService, impl as never),
      { router: { interceptors: [tagResponse] } },
    ));
    let header: Headers | undefined;
    const res = await mem.ingestLog({ log: create(LogRecordSchema, { requestId: "m" }) }, { onHeader: (h) => (header = h) });
    expect(res.message).toBe("Log ingested m");
    expect(header?.get("x-intercepted")).toBe("IngestLog");
  });
});

describe("gRPC server shutdown", () => {
  it("ends open streams with UNAVAILABLE so clients reconnect elsewhere", async () => {
    const server = createGrpcServer({ services: [createServiceImplSpec(LoggingService, impl as never)] });
    const port = await server.listen("127.0.0.1", 0);
    const transport = createGrpcTransport({ address: `127.0.0.1:${port}` });
    const client = createClient(LoggingService, transport);
    const seen: string[] = [];
    const done = (async () => {
      for await (const m of client.tailLogs({ userId: "forever" })) seen.push(m.log?.requestId ?? "");
    })().catch((e: unknown) => e);
    while (seen.length < 3) await sleep(10);
    await server.shutdown(2_000);
    const err = await done;
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    transport.close();
  });
});

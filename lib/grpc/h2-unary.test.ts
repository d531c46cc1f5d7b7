import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createServiceImplSpec, type Interceptor } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LogRecordSchema, LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { fieldViolationsOf, invalidArgument } from "../errors.js";
import { createGrpcServer, type GrpcServer } from "./server.js";
import { createGrpcTransport, type GrpcTransport } from "./transport.js";

// A test double of the logging handlers behind a real grpc-js server; the
// transport under test sends its unary calls with the lean HTTP/2 client.
const awkward = "ünïcode 100% done\nsecond line: a/b;c";
const impl = {
  ingestLog(req: { log?: { requestId: string } },
    ctx: { requestHeader: Headers; responseHeader: Headers; responseTrailer: Headers; timeoutMs(): number | undefined }) {
    const id = req.log?.requestId ?? "";
    if (!id) throw invalidArgument([{ field: "log.request_id", description: awkward }]);
    if (id === "meta-error") throw new ConnectError("refused", Code.PermissionDenied, { "x-why": "policy" });
    if (id === "big") return { message: "x".repeat(5 * 1024 * 1024) };
    ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-request-id") ?? "");
    ctx.responseHeader.set("x-echo-bin", ctx.requestHeader.get("x-data-bin") ?? "");
    ctx.responseHeader.set("x-timeout-ms", String(ctx.timeoutMs()));
    ctx.responseTrailer.set("x-trailer", "t");
    return { message: `Log ingested ${id}` };
  },
  async getLog(_req: unknown, ctx: { signal: AbortSignal }) {
    await sleep(2_000, undefined, { signal: ctx.signal }).catch(() => undefined);
    return {};
  },
};

const tagResponse: Interceptor = (next) => async (req) => {
  const res = await next(req);
  res.header.set("x-client-interceptor", req.method.name);
  return res;
};

async function startServer(port = 0): Promise<{ server: GrpcServer; port: number }> {
  const server = createGrpcServer({ services: [createServiceImplSpec(LoggingService, impl as never)] });
  return { server, port: await server.listen("127.0.0.1", port) };
}

const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected a failure"); }, (e: unknown) => ConnectError.from(e));

describe("unary calls over the lean HTTP/2 client", () => {
  let server: GrpcServer;
  let transport: GrpcTransport;
  let client: ReturnType<typeof createClient<typeof LoggingService>>;

  beforeAll(async () => {
    const s = await startServer();
    server = s.server;
    transport = createGrpcTransport({ address: `127.0.0.1:${s.port}`, unaryOverHttp2: true, interceptors: [tagResponse] });
    client = createClient(LoggingService, transport);
  });
  afterAll(async () => {
    transport.close();
    await server.shutdown(1_000);
  });

  it("round-trips a call with metadata (a -bin key included), response headers, trailers and the interceptors", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const bin = Buffer.from([0, 1, 2, 250, 255]).toString("base64");
    const res = await client.ingestLog(
      { log: create(LogRecordSchema, { requestId: "r1" }) },
      { headers: { "x-request-id": "abc", "x-data-bin": bin }, timeoutMs: 5_000, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
    );
    expect(res.message).toBe("Log ingested r1");
    expect(header?.get("x-echo")).toBe("abc");
    expect(header?.get("x-echo-bin")).toBe(bin);
    expect(header?.get("x-client-interceptor")).toBe("IngestLog");
    expect(Number(header?.get("x-timeout-ms"))).toBeGreaterThan(4_000); // grpc-timeout reached the server
    expect(Number(header?.get("x-timeout-ms"))).toBeLessThanOrEqual(5_000);
    expect(trailer?.get("x-trailer")).toBe("t");
    expect(trailer?.has("grpc-status")).toBe(false);
  });

  it("carries an error's code, percent-decoded message and BadRequest details", async () => {
    const err = await failure(client.ingestLog({}));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe(`log.request_id: ${awkward}`);
    expect(fieldViolationsOf(err)).toEqual([{ field: "log.request_id", description: awkward }]);
  });

  it("keeps an error's trailers as its metadata", async () => {
    const err = await failure(client.ingestLog({ log: { requestId: "meta-error" } }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.metadata.get("x-why")).toBe("policy");
    expect(err.metadata.has("grpc-status")).toBe(false);
  });

  it("reads a trailers-only answer (UNIMPLEMENTED for a method the server lacks)", async () => {
    const err = await failure(client.queryLogs({}));
    expect(err.code).toBe(Code.Unimplemented);
  });

  it("fails a call that outlives its deadline with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const err = await failure(client.getLog({}, { timeoutMs: 100 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("cancels a call when its signal aborts", async () => {
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(), 50);
    const started = Date.now();
    const err = await failure(client.getLog({}, { signal: ctrl.signal }));
    expect(err.code).toBe(Code.Canceled);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("refuses a response larger than the receive limit with RESOURCE_EXHAUSTED", async () => {
    const err = await failure(client.ingestLog({ log: { requestId: "big" } }));
    expect(err.code).toBe(Code.ResourceExhausted);
    // The session survives the cancelled stream.
    expect((await client.ingestLog({ log: { requestId: "after" } })).message).toBe("Log ingested after");
  });

  it("keeps calls on one session when many run at once", async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
    const res = await Promise.all(ids.map((id) => client.ingestLog({ log: { requestId: id } })));
    expect(res.map((r) => r.message)).toEqual(ids.map((id) => `Log ingested ${id}`));
  });
});

describe("the lean HTTP/2 client's connection", () => {
  const opened: GrpcTransport[] = [];
  const open = (port: number) => {
    const t = createGrpcTransport({ address: `127.0.0.1:${port}`, unaryOverHttp2: true });
    opened.push(t);
    return createClient(LoggingService, t);
  };
  afterEach(() => {
    for (const t of opened.splice(0)) t.close();
  });

  it("fails calls to a server that is down with UNAVAILABLE at once, the next ones too while backing off", async () => {
    const { server, port } = await startServer();
    await server.shutdown(0);
    const client = open(port);
    const started = Date.now();
    expect((await failure(client.ingestLog({ log: { requestId: "a" } }))).code).toBe(Code.Unavailable);
    expect((await failure(client.ingestLog({ log: { requestId: "b" } }))).code).toBe(Code.Unavailable);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it("reconnects on the next call after the server restarted", async () => {
    const first = await startServer();
    const client = open(first.port);
    expect((await client.ingestLog({ log: { requestId: "1" } })).message).toBe("Log ingested 1");
    await first.server.shutdown(0);
    const second = await startServer(first.port);
    try {
      await sleep(50); // the old session's close reaches the client
      expect((await client.ingestLog({ log: { requestId: "2" } })).message).toBe("Log ingested 2");
    } finally {
      await second.server.shutdown(0);
    }
  });

  it("fails a call in flight with UNAVAILABLE when the server goes away, then reaches it again once it is back", async () => {
    const first = await startServer();
    const client = open(first.port);
    const pending = failure(client.getLog({}, { timeoutMs: 5_000 }));
    await sleep(50);
    await first.server.shutdown(0);
    expect((await pending).code).toBe(Code.Unavailable);
    const second = await startServer(first.port);
    try {
      await sleep(2_100); // past the longest reconnect backoff
      expect((await client.ingestLog({ log: { requestId: "3" } })).message).toBe("Log ingested 3");
    } finally {
      await second.server.shutdown(0);
    }
  });
});

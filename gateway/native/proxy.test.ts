import http from "node:http";
import { create, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LogRecordSchema, LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { fieldViolationsOf } from "../../lib/errors.js";
import { createGrpcTransport, type GrpcTransport } from "../../lib/grpc/transport.js";
import type { GrpcServer } from "../../lib/grpc/server.js";
import { createCluster, type Cluster } from "../clusters/cluster.js";
import { createListener, type Listener } from "../server/listener.js";
import { createNativeHandler, type NativeCall } from "./proxy.js";
import { startUpstream, StreamTestService, type UpstreamLog } from "./test-support.js";

// Real grpc-js upstream ← cluster ← native handler behind the real listener ← real clients of each protocol.
let upstream: { server: GrpcServer; log: UpstreamLog };
let cluster: Cluster;
let listener: Listener;
let port: number;
type TestExchange = { requestId: string; responseHeaders: Headers; seen: string[] };
const admitted: NativeCall<TestExchange>[] = [];

beforeAll(async () => {
  const u = await startUpstream();
  upstream = u;
  cluster = createCluster({ name: "logging", endpoints: [`127.0.0.1:${u.port}`] });
  const native = createNativeHandler<TestExchange>({
    services: [LoggingService, StreamTestService, AuthService],
    clusterFor: (s: DescService) => (s === LoggingService || s === StreamTestService ? cluster : undefined),
    maxMessageBytes: 64 * 1024,
    admit: async (call) => {
      admitted.push(call);
      const auth = call.requestHeader.get("authorization");
      if (auth === "Bearer over-limit") {
        call.responseHeader.set("retry-after", "30");
        throw new ConnectError("rate limit exceeded", Code.ResourceExhausted);
      }
      if (auth !== "Bearer good") throw new ConnectError("authentication required", Code.Unauthenticated);
      call.responseHeader.set("x-ratelimit-remaining", "9");
      call.exchange?.seen.push(call.method.name);
      return new Headers({ "x-user-id": "u1", "x-user-roles": "user" });
    },
    logger: pino({ level: "silent" }),
  });
  listener = createListener((req, res) => {
    // A dispatcher that fixed the request id and CORS headers itself passes them on (tests ask with x-test-fixed-id).
    const fixed = req.headers["x-test-fixed-id"];
    const exchange: TestExchange | undefined = typeof fixed === "string"
      ? { requestId: fixed, responseHeaders: new Headers({ "access-control-expose-headers": "x-request-id" }), seen: [] }
      : undefined;
    if (native.handle(req, res, exchange)) return;
    res.statusCode = 404;
    res.setHeader("x-answered-by", "rest");
    res.end();
  });
  port = await listener.listen(0, "127.0.0.1");
});
afterAll(async () => {
  await listener.close(100);
  cluster.close();
  await upstream.server.shutdown(100);
});
beforeEach(() => {
  admitted.length = 0;
  upstream.log.calls.length = 0;
  upstream.log.cancelled.length = 0;
});

const auth = { authorization: "Bearer good" };
const baseUrl = () => `http://127.0.0.1:${port}`;
const protocols: { name: string; transport: () => Transport & { close?: () => void }; fullDuplex: boolean }[] = [
  { name: "gRPC (grpc-js over h2c)", transport: () => createGrpcTransport({ address: `127.0.0.1:${port}` }), fullDuplex: true },
  { name: "Connect JSON (HTTP/1.1)", transport: () => createConnectTransport({ baseUrl: baseUrl(), httpVersion: "1.1" }), fullDuplex: false },
  { name: "Connect binary (h2c)", transport: () => createConnectTransport({ baseUrl: baseUrl(), httpVersion: "2", useBinaryFormat: true }), fullDuplex: true },
  { name: "gRPC-Web (HTTP/1.1)", transport: () => createGrpcWebTransport({ baseUrl: baseUrl(), httpVersion: "1.1" }), fullDuplex: false },
  { name: "gRPC-Web (h2c)", transport: () => createGrpcWebTransport({ baseUrl: baseUrl(), httpVersion: "2" }), fullDuplex: true },
];

// Connect-ES clients merge headers and trailers into an error's metadata (so a value sent in both reads
// "v, v"); the grpc-js client shows only the trailers.
async function failure(p: Promise<unknown> | (() => Promise<unknown>)): Promise<ConnectError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

describe.each(protocols)("native proxy over $name", ({ transport: makeTransport, fullDuplex }) => {
  let transport: Transport & { close?: () => void };
  let logging: ReturnType<typeof createClient<typeof LoggingService>>;
  let streams: ReturnType<typeof createClient<typeof StreamTestService>>;
  beforeAll(() => {
    transport = makeTransport();
    logging = createClient(LoggingService, transport);
    streams = createClient(StreamTestService, transport);
  });
  afterAll(() => (transport as GrpcTransport).close?.());

  it("forwards a unary call with response headers, trailers and the client's request id", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const res = await logging.ingestLog({ log: create(LogRecordSchema, { requestId: "r1" }) },
      { headers: { ...auth, "x-request-id": "client-id-1" }, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
    expect(res.message).toBe("Log ingested r1");
    expect(header?.get("x-echo")).toBe("r1");
    expect(header?.get("x-request-id")).toBe("client-id-1");
    expect(header?.get("x-ratelimit-remaining")).toBe("9");
    expect(trailer?.get("x-trailer")).toBe("t");
    expect(upstream.log.calls[0]?.header.get("x-request-id")).toBe("client-id-1");
    expect(admitted[0]?.requestId).toBe("client-id-1");
  });

  it("uses the request id and reply headers its dispatcher fixed", async () => {
    let header: Headers | undefined;
    await logging.ingestLog({ log: { requestId: "r" } }, { headers: { ...auth, "x-request-id": "client-id", "x-test-fixed-id": "fixed-1" }, onHeader: (h) => (header = h) });
    expect(header?.get("x-request-id")).toBe("fixed-1");
    expect(header?.get("access-control-expose-headers")).toBe("x-request-id");
    expect(admitted[0]?.exchange?.seen).toEqual(["IngestLog"]);
    expect(upstream.log.calls[0]?.header.get("x-request-id")).toBe("fixed-1");
  });

  it("replaces a malformed request id with a new one, sent upstream and back", async () => {
    let header: Headers | undefined;
    await logging.ingestLog({ log: { requestId: "r" } }, { headers: { ...auth, "x-request-id": "bad id!" }, onHeader: (h) => (header = h) });
    const id = header?.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(upstream.log.calls[0]?.header.get("x-request-id")).toBe(id);
    expect(upstream.log.calls[0]?.header.get("baggage")).toBe(`request_id=${id}`);
  });

  it("sends upstream only the admitted identity, never the client's, plus trace context", async () => {
    await logging.ingestLog({ log: { requestId: "r" } }, {
      headers: {
        ...auth, "x-user-id": "admin", "x-user-roles": "admin", "x-project-id": "p-other", "x-api-key-id": "k-other",
        "x-custom": "1", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", baggage: "tenant=a,request_id=spoof",
      },
    });
    const h = upstream.log.calls[0]!.header;
    expect(h.get("x-user-id")).toBe("u1");
    expect(h.get("x-user-roles")).toBe("user");
    for (const name of ["x-project-id", "x-api-key-id", "x-custom", "authorization"]) expect(h.has(name)).toBe(false);
    expect(h.get("traceparent")).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    expect(h.get("baggage")).toMatch(/^tenant=a,request_id=[0-9a-f-]{36}$/);
  });

  it("relays an upstream error with its code, message and google.rpc.BadRequest details", async () => {
    const err = await failure(logging.ingestLog({}, { headers: auth }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe("log.request_id: required");
    expect(fieldViolationsOf(err)).toEqual([{ field: "log.request_id", description: "required" }]);
  });

  it("relays an upstream error's metadata", async () => {
    const err = await failure(logging.ingestLog({ log: { requestId: "refuse" } }, { headers: auth }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.metadata.get("x-why")).toBe("owner");
  });

  it("streams server messages in order with headers and trailers", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const ids: string[] = [];
    for await (const m of logging.tailLogs({ userId: "u" }, { headers: auth, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) })) {
      ids.push(m.log?.requestId ?? "");
    }
    expect(ids).toEqual(["u-0", "u-1", "u-2"]);
    expect(header?.get("x-echo")).toBe("u");
    expect(header?.get("x-request-id")).toBeTruthy();
    expect(trailer?.get("x-trailer")).toBe("end");
  });

  it("delivers a server stream's messages, then its error with code and details", async () => {
    const ids: string[] = [];
    const err = await failure(async () => {
      for await (const m of logging.tailLogs({ userId: "fail" }, { headers: auth })) ids.push(m.log?.requestId ?? "");
    });
    expect(ids).toEqual(["fail-0", "fail-1", "fail-2"]);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldViolationsOf(err)).toEqual([{ field: "user_id", description: "broke mid-stream" }]);
  });

  it("cancels the upstream stream when the client cancels", async () => {
    const ctrl = new AbortController();
    const err = await failure(async () => {
      for await (const m of logging.tailLogs({ userId: "forever" }, { headers: auth, signal: ctrl.signal })) {
        if (m.log?.requestId === "forever-2") ctrl.abort();
      }
    });
    expect(err.code).toBe(Code.Canceled);
    await expect.poll(() => upstream.log.cancelled).toContain("TailLogs");
  });

  it("forwards a client stream", async () => {
    let trailer: Headers | undefined;
    async function* batches() {
      for (let i = 0; i < 4; i++) yield { logs: [{ requestId: `b${i}` }, { requestId: `c${i}` }] };
    }
    const res = await streams.collect(batches(), { headers: auth, onTrailer: (t) => (trailer = t) });
    expect(res.ingested).toBe(8);
    expect(trailer?.get("x-trailer")).toBe("8");
  });

  // Full-duplex transports must carry a bidi stream message by message; HTTP/1.1 ones cannot, and must be refused cleanly.
  it(fullDuplex ? "forwards a bidi stream message by message" : "refuses a bidi stream over HTTP/1.1 (Connect answers 505) without calling upstream", async () => {
    if (!fullDuplex) {
      const err = await failure(async () => {
        for await (const _ of streams.chat((async function* () { yield { userId: "a" }; })(), { headers: auth })) void _;
      });
      expect(err.rawMessage).toBe("HTTP 505");
      expect(upstream.log.calls).toEqual([]);
      return;
    }
    const replies: string[] = [];
    let next!: () => void;
    async function* requests() {
      for (const id of ["a", "b", "c"]) {
        const answered = new Promise<void>((r) => (next = r));
        yield { userId: id };
        await answered; // the next request waits for the reply: proves the stream is full duplex end to end
      }
    }
    for await (const m of streams.chat(requests(), { headers: auth })) {
      replies.push(m.log?.requestId ?? "");
      next();
    }
    expect(replies).toEqual(["echo-a", "echo-b", "echo-c"]);
  });

  it("propagates the client's deadline upstream", async () => {
    const started = performance.now();
    const err = await failure(logging.getLog({}, { headers: auth, timeoutMs: 150 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(performance.now() - started).toBeLessThan(1_500);
    await expect.poll(() => upstream.log.cancelled).toContain("GetLog");
  });

  it("answers admit's refusal without calling upstream", async () => {
    let header: Headers | undefined;
    const err = await failure(logging.ingestLog({ log: { requestId: "r" } }, { headers: { "x-request-id": "rid-9" }, onHeader: (h) => (header = h) }));
    expect(err.code).toBe(Code.Unauthenticated);
    const limited = await failure(logging.tailLogs({ userId: "u" }, { headers: { authorization: "Bearer over-limit" } })[Symbol.asyncIterator]().next());
    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.metadata.get("retry-after")).toMatch(/^30(, 30)?$/);
    expect(upstream.log.calls).toEqual([]);
    expect(header?.get("x-request-id") ?? err.metadata.get("x-request-id")).toMatch(/^rid-9(, rid-9)?$/);
  });

  it("refuses a message over maxMessageBytes with RESOURCE_EXHAUSTED without calling upstream", async () => {
    const err = await failure(logging.ingestLog({ log: { requestId: "r", path: "x".repeat(100 * 1024) } }, { headers: auth }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(upstream.log.calls).toEqual([]);
  });

  it("refuses internal methods with PERMISSION_DENIED before admit and upstream", async () => {
    const read = await failure(logging.readLogs({}, { headers: auth }));
    expect(read.code).toBe(Code.PermissionDenied);
    const ingest = await failure(logging.ingestLogStream((async function* () { yield { logs: [] }; })(), { headers: auth }));
    expect(ingest.code).toBe(Code.PermissionDenied);
    const undeclared = await failure(streams.undeclared({}, { headers: auth }));
    expect(undeclared.code).toBe(Code.PermissionDenied);
    expect(admitted).toEqual([]);
    expect(upstream.log.calls).toEqual([]);
  });
});

/** A plain HTTP/1.1 request; resolves with the status and who answered. */
function request(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; by: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, by: String(res.headers["x-answered-by"] ?? "native") }));
    });
    req.on("error", reject);
    req.end(method === "POST" ? "{}" : undefined);
  });
}

describe("native proxy dispatch", () => {
  const json = { "content-type": "application/json" };
  it.each([
    ["an unknown service", "POST", "/mesh.nope.v1.NopeService/IngestLog", json],
    ["an unknown method", "POST", "/mesh.logging.v1.LoggingService/Nope", json],
    ["a REST path", "POST", "/api/v1/logs", json],
    ["a content type of no RPC protocol", "POST", "/mesh.logging.v1.LoggingService/IngestLog", { "content-type": "text/plain" }],
    ["no content type", "POST", "/mesh.logging.v1.LoggingService/IngestLog", {}],
    ["a GET (no method declares idempotency_level)", "GET", "/mesh.logging.v1.LoggingService/GetLog?encoding=json&message=%7B%7D", {}],
  ])("leaves %s to the REST handler", async (_what, method, path, headers) => {
    expect(await request(method, path, headers)).toEqual({ status: 404, by: "rest" });
  });

  it("takes a Connect unary JSON call, as curl sends it", async () => {
    expect(await request("POST", "/mesh.logging.v1.LoggingService/IngestLog", { ...json, ...auth })).toEqual({ status: 400, by: "native" });
  });

  it("answers UNAVAILABLE for a service no cluster serves", async () => {
    const res = await fetch(`${baseUrl()}/mesh.auth.v1.AuthService/GetJwks`, { method: "POST", headers: { ...json, ...auth }, body: "{}" });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe("unavailable");
  });

  it("refuses an unknown JSON field with INVALID_ARGUMENT", async () => {
    const res = await fetch(`${baseUrl()}/mesh.logging.v1.LoggingService/IngestLog`, {
      method: "POST", headers: { ...json, ...auth }, body: JSON.stringify({ log: { requestId: "r" }, bogus: 1 }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    expect(upstream.log.calls).toEqual([]);
  });
});

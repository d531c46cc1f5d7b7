// Fixtures for the native proxy tests (imported by *.test.ts and the overhead script only).
import { setTimeout as sleep } from "node:timers/promises";
import { create, createFileRegistry, setExtension, type DescFile } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema, MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createServiceImplSpec, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { Access, file_mesh_gateway_v1_policy, MethodPolicySchema, policy } from "../../gen/mesh/gateway/v1/policy_pb.js";
import {
  file_mesh_logging_v1_logging, LoggingService, type GetLogRequestSchema, type GetLogResponseSchema,
  type IngestLogStreamRequestSchema, type IngestLogStreamResponseSchema, type TailLogsRequestSchema, type TailLogsResponseSchema,
} from "../../gen/mesh/logging/v1/logging_pb.js";
import { invalidArgument } from "../../lib/errors.js";
import { createGrpcServer, type GrpcServer } from "../../lib/grpc/server.js";

type Kind = "unary" | "server" | "client" | "bidi";
const rpcs: ReadonlyArray<readonly [name: string, kind: Kind, input: string, output: string, access: Access | undefined]> = [
  ["Collect", "client", "IngestLogStreamRequest", "IngestLogStreamResponse", Access.USER],
  ["Chat", "bidi", "TailLogsRequest", "TailLogsResponse", Access.USER],
  ["Undeclared", "unary", "GetLogRequest", "GetLogResponse", undefined],
];

/**
 * mesh.testing.v1.StreamTestService, built here from the logging messages:
 * what the mesh's own contracts cannot offer from outside, a public
 * client-streaming method (logging's is internal) and a bidi one (no mesh
 * service has one), plus a method without a policy.
 */
export const StreamTestService = (() => {
  const file = create(FileDescriptorProtoSchema, {
    name: "mesh/testing/v1/stream_test.proto",
    package: "mesh.testing.v1",
    syntax: "proto3",
    dependency: [file_mesh_logging_v1_logging.proto.name, file_mesh_gateway_v1_policy.proto.name],
    service: [{
      name: "StreamTestService",
      method: rpcs.map(([name, kind, input, output, access]) => {
        const options = create(MethodOptionsSchema);
        if (access !== undefined) setExtension(options, policy, create(MethodPolicySchema, { access }));
        return {
          name, options, inputType: `.mesh.logging.v1.${input}`, outputType: `.mesh.logging.v1.${output}`,
          clientStreaming: kind === "client" || kind === "bidi", serverStreaming: kind === "server" || kind === "bidi",
        };
      }),
    }],
  });
  const deps = new Map<string, DescFile>([file_mesh_logging_v1_logging, file_mesh_gateway_v1_policy].map((f) => [f.proto.name, f]));
  const service = createFileRegistry(file, (name) => deps.get(name)).getService("mesh.testing.v1.StreamTestService");
  if (!service) throw new Error("StreamTestService missing");
  return service as GenService<{
    collect: { methodKind: "client_streaming"; input: typeof IngestLogStreamRequestSchema; output: typeof IngestLogStreamResponseSchema };
    chat: { methodKind: "bidi_streaming"; input: typeof TailLogsRequestSchema; output: typeof TailLogsResponseSchema };
    undeclared: { methodKind: "unary"; input: typeof GetLogRequestSchema; output: typeof GetLogResponseSchema };
  }>;
})();

/** What the upstream saw: every call's method and request metadata, and calls it saw cancelled. */
export interface UpstreamLog {
  readonly calls: { readonly method: string; readonly header: Headers }[];
  readonly cancelled: string[];
}

type Ctx = HandlerContext;

/** Test double of the logging handlers (the server, codecs and transport around it are real). */
function loggingImpl(log: UpstreamLog) {
  return {
    ingestLog(req: { log?: { requestId: string } }, ctx: Ctx) {
      if (!req.log?.requestId) throw invalidArgument([{ field: "log.request_id", description: "required" }]);
      if (req.log.requestId === "refuse") throw new ConnectError("not yours", Code.PermissionDenied, { "x-why": "owner" });
      ctx.responseHeader.set("x-echo", req.log.requestId);
      ctx.responseTrailer.set("x-trailer", "t");
      return { message: `Log ingested ${req.log.requestId}` };
    },
    async getLog(_req: unknown, ctx: Ctx) {
      await sleep(5_000, undefined, { signal: ctx.signal }).catch(() => log.cancelled.push("GetLog"));
      return {};
    },
    async *tailLogs(req: { userId: string }, ctx: Ctx) {
      ctx.responseHeader.set("x-echo", req.userId);
      for (let i = 0; i < 3; i++) yield { log: { requestId: `${req.userId}-${i}` } };
      if (req.userId === "forever") await sleep(60_000, undefined, { signal: ctx.signal }).catch(() => log.cancelled.push("TailLogs"));
      if (req.userId === "fail") throw invalidArgument([{ field: "user_id", description: "broke mid-stream" }]);
      ctx.responseTrailer.set("x-trailer", "end");
    },
    async ingestLogStream() {
      return { ingested: 1 };
    },
    readLogs() {
      return {};
    },
  };
}

function streamTestImpl() {
  return {
    async collect(reqs: AsyncIterable<{ logs: unknown[] }>, ctx: Ctx) {
      let ingested = 0;
      for await (const r of reqs) ingested += r.logs.length;
      ctx.responseTrailer.set("x-trailer", String(ingested));
      return { ingested };
    },
    async *chat(reqs: AsyncIterable<{ userId: string }>) {
      for await (const r of reqs) yield { log: { requestId: `echo-${r.userId}` } };
    },
    undeclared() {
      return {};
    },
  };
}

/** Records every call's metadata before the handler runs. */
function recorder(log: UpstreamLog): Interceptor {
  return (next) => (req) => {
    log.calls.push({ method: req.method.name, header: new Headers(req.header) });
    return next(req);
  };
}

/** A real grpc-js server on 127.0.0.1:0 serving the logging double and StreamTestService. */
export async function startUpstream(): Promise<{ server: GrpcServer; port: number; log: UpstreamLog }> {
  const log: UpstreamLog = { calls: [], cancelled: [] };
  const server = createGrpcServer({
    services: [
      createServiceImplSpec(LoggingService, loggingImpl(log) as never),
      createServiceImplSpec(StreamTestService, streamTestImpl() as never),
    ],
    interceptors: [recorder(log)],
  });
  const port = await server.listen("127.0.0.1", 0);
  return { server, port, log };
}

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { BadRequestSchema, type BadRequest } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

// The reference Node gRPC stack as any other project would use it: grpc-js with the
// mesh's .proto files loaded at run time by proto-loader (include paths proto/ and
// google-proto-files), knowing nothing of gen/.
const require = createRequire(import.meta.url);
const includeDirs = [join(import.meta.dirname, "../../proto"), dirname(require.resolve("google-proto-files/package.json"))];

type Constructor = new (address: string, creds: grpc.ChannelCredentials) => grpc.Client;

const services = (() => {
  const definition = loadSync(
    ["mesh/auth/v1/auth.proto", "mesh/project/v1/project.proto", "mesh/logging/v1/logging.proto", "mesh/analytics/v1/analytics.proto"],
    { includeDirs, longs: String, enums: String, defaults: true, oneofs: true },
  );
  const root = grpc.loadPackageDefinition(definition) as unknown as { mesh: Record<string, { v1: Record<string, Constructor> }> };
  return {
    auth: root.mesh.auth!.v1.AuthService!, project: root.mesh.project!.v1.ProjectService!,
    logging: root.mesh.logging!.v1.LoggingService!, analytics: root.mesh.analytics!.v1.AnalyticsService!,
  };
})();

/** One mesh service's client built from proto/ by proto-loader. */
export function protoClient(service: keyof typeof services, address: string): grpc.Client {
  return new services[service](address, grpc.credentials.createInsecure());
}

/** Per-call options: request metadata and a deadline in milliseconds from now. */
export interface CallOptions {
  readonly metadata?: Record<string, string>;
  readonly deadlineMs?: number;
}

/** A unary reply with the response headers and trailers the server sent. */
export interface UnaryReply<T> {
  readonly message: T;
  readonly headers: grpc.Metadata;
  readonly trailers: grpc.Metadata;
}

type Method = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb?: (err: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall & grpc.ClientReadableStream<unknown>;

function methodOf(client: grpc.Client, name: string): Method {
  const method = (client as unknown as Record<string, Method | undefined>)[name];
  if (!method) throw new Error(`no method ${name}`);
  return method.bind(client);
}

function callArgs(opts: CallOptions): [grpc.Metadata, grpc.CallOptions] {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  return [md, { deadline: Date.now() + (opts.deadlineMs ?? 10_000) }];
}

/** Calls a unary method; rejects with the grpc-js `ServiceError` (code, details, trailers as `metadata`). */
export function unary<T = Record<string, unknown>>(client: grpc.Client, name: string, request: object, opts: CallOptions = {}): Promise<UnaryReply<T>> {
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    let message: T | undefined;
    let failed = false;
    const call = methodOf(client, name)(request, ...callArgs(opts), (err, res) => {
      if (err) { failed = true; reject(err); } else message = res as T;
    });
    call.on("metadata", (md) => { headers = md; });
    call.on("status", (s: grpc.StatusObject) => { if (!failed) resolve({ message: message as T, headers, trailers: s.metadata }); });
  });
}

/** An open server stream: its messages in order, its headers, and how it ended. */
export interface ServerStream<T> {
  /** Resolves with the next message matching `accept` (others are skipped); rejects if the stream ends first. */
  next(accept?: (message: T) => boolean): Promise<T>;
  readonly headers: Promise<grpc.Metadata>;
  /** Resolves with the final status, OK or not (a failed stream's error is its status). */
  readonly ended: Promise<grpc.StatusObject>;
  cancel(): void;
}

/** Opens a server-streaming call. */
export function serverStream<T = Record<string, unknown>>(client: grpc.Client, name: string, request: object, opts: CallOptions = {}): ServerStream<T> {
  const call = methodOf(client, name)(request, ...callArgs(opts));
  const buffered: T[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  call.on("data", (m: T) => { buffered.push(m); wake?.(); });
  const ended = new Promise<grpc.StatusObject>((resolve) => call.on("status", (s: grpc.StatusObject) => { done = true; wake?.(); resolve(s); }));
  call.on("error", () => undefined); // the status carries it
  return {
    async next(accept = () => true) {
      for (;;) {
        const i = buffered.findIndex(accept);
        if (i >= 0) return buffered.splice(0, i + 1).pop()!;
        if (done) throw new Error(`stream ${name} ended before the expected message`);
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    },
    headers: new Promise((resolve) => call.once("metadata", resolve)),
    ended,
    cancel: () => call.cancel(),
  };
}

/** The `google.rpc.BadRequest` in a failure's `grpc-status-details-bin` trailer, decoded as any client would. */
export function badRequestOf(err: { metadata: grpc.Metadata }): BadRequest | undefined {
  const raw = err.metadata.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return undefined;
  const status = fromBinary(StatusSchema, raw);
  for (const any of status.details) {
    const detail = anyUnpack(any, BadRequestSchema);
    if (detail) return detail;
  }
  return undefined;
}

import { create, createFileRegistry, fromBinary, toBinary, type DescService, type FileRegistry, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  ServerReflectionRequestSchema, ServerReflectionResponseSchema, type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";

/** A reflection `error_response`, thrown by the helpers that expect an answer. */
export class ReflectionError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** One `ServerReflectionInfo` stream, asked one question at a time, as grpcurl does. */
export interface ReflectionClient {
  /** The raw answer to one request (errors included). */
  ask(request: MessageInitShape<typeof ServerReflectionRequestSchema>): Promise<ServerReflectionResponse>;
  listServices(): Promise<string[]>;
  fileContainingSymbol(symbol: string): Promise<FileDescriptorProto[]>;
  fileByFilename(name: string): Promise<FileDescriptorProto[]>;
  fileContainingExtension(containingType: string, extensionNumber: number): Promise<FileDescriptorProto[]>;
  allExtensionNumbersOfType(type: string): Promise<number[]>;
  /**
   * Describes `service` from reflection alone: the file declaring it, every
   * import (asked for by name when not sent along), compiled into a protobuf-es
   * registry (which fails on anything missing or inconsistent).
   */
  describe(service: string): Promise<{ service: DescService; registry: FileRegistry; files: FileDescriptorProto[] }>;
  /** The stream's response headers. */
  headers(): Promise<grpc.Metadata>;
  /** Half-closes the stream; resolves with its status once the server has ended it. */
  end(): Promise<grpc.StatusObject>;
  close(): void;
}

export interface ReflectionClientOptions {
  /** `v1` (default) or `v1alpha`: the same messages on another path. */
  readonly version?: "v1" | "v1alpha";
  /** Metadata sent with the stream (e.g. `x-request-id`). */
  readonly metadata?: Record<string, string>;
}

/**
 * A small gRPC server reflection client over a grpc-js bidi stream (`@grpc/reflection`
 * has only the server side), decoding FileDescriptorProtos with protobuf-es.
 */
export function createReflectionClient(address: string, opts: ReflectionClientOptions = {}): ReflectionClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) metadata.set(k, v);
  // v1alpha's messages are v1's under another package: the same bytes.
  const call = client.makeBidiStreamRequest(`/grpc.reflection.${opts.version ?? "v1"}.ServerReflection/ServerReflectionInfo`,
    (m: MessageInitShape<typeof ServerReflectionRequestSchema>) => Buffer.from(toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, m))),
    (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b), metadata);
  const waiting: { resolve(r: ServerReflectionResponse): void; reject(e: Error): void }[] = [];
  const headers = new Promise<grpc.Metadata>((resolve) => call.once("metadata", resolve));
  const status = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
  call.on("data", (r: ServerReflectionResponse) => waiting.shift()?.resolve(r));
  call.on("error", (e: Error) => { for (const w of waiting.splice(0)) w.reject(e); });

  const ask = (request: MessageInitShape<typeof ServerReflectionRequestSchema>) =>
    new Promise<ServerReflectionResponse>((resolve, reject) => {
      waiting.push({ resolve, reject });
      call.write(request);
    });
  const files = async (request: MessageInitShape<typeof ServerReflectionRequestSchema>) => {
    const r = answerOf(await ask(request), "fileDescriptorResponse");
    return r.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  };
  const self: ReflectionClient = {
    ask,
    listServices: async () => answerOf(await ask({ messageRequest: { case: "listServices", value: "*" } }), "listServicesResponse")
      .service.map((s) => s.name),
    fileContainingSymbol: (symbol) => files({ messageRequest: { case: "fileContainingSymbol", value: symbol } }),
    fileByFilename: (name) => files({ messageRequest: { case: "fileByFilename", value: name } }),
    fileContainingExtension: (containingType, extensionNumber) =>
      files({ messageRequest: { case: "fileContainingExtension", value: { containingType, extensionNumber } } }),
    allExtensionNumbersOfType: async (type) =>
      answerOf(await ask({ messageRequest: { case: "allExtensionNumbersOfType", value: type } }), "allExtensionNumbersResponse").extensionNumber,
    async describe(name) {
      const byName = new Map<string, FileDescriptorProto>();
      const add = (list: FileDescriptorProto[]) => list.forEach((f) => byName.set(f.name, f));
      add(await self.fileContainingSymbol(name));
      for (;;) {
        const missing = [...new Set([...byName.values()].flatMap((f) => f.dependency))].filter((d) => !byName.has(d));
        if (missing.length === 0) break;
        for (const d of missing) add(await self.fileByFilename(d));
      }
      const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(byName) }));
      const service = registry.getService(name);
      if (!service) throw new Error(`${name} is not a service in the files reflection returned`);
      return { service, registry, files: [...byName.values()] };
    },
    headers: () => headers,
    async end() {
      call.end();
      return status;
    },
    close: () => client.close(),
  };
  return self;
}

type Answers = ServerReflectionResponse["messageResponse"];

/** The answer of the kind `wanted`; an error_response is thrown as a {@link ReflectionError}. */
function answerOf<C extends NonNullable<Answers["case"]>>(r: ServerReflectionResponse, wanted: C): Extract<Answers, { case: C }>["value"] {
  const m = r.messageResponse;
  if (m.case === "errorResponse") throw new ReflectionError(m.value.errorCode, m.value.errorMessage);
  if (m.case !== wanted) throw new Error(`reflection answered ${m.case ?? "nothing"} where ${wanted} was expected`);
  return m.value as never;
}

/** `files` with every file after its imports (a registry is built in that order). */
function importsFirst(files: ReadonlyMap<string, FileDescriptorProto>): FileDescriptorProto[] {
  const sorted: FileDescriptorProto[] = [];
  const done = new Set<string>();
  const visit = (f: FileDescriptorProto) => {
    if (done.has(f.name)) return;
    done.add(f.name);
    f.dependency.forEach((d) => visit(files.get(d)!));
    sorted.push(f);
  };
  files.forEach(visit);
  return sorted;
}

import { create, fromBinary, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import {
  ErrorResponseSchema, ExtensionNumberResponseSchema, FileDescriptorResponseSchema, ListServiceResponseSchema,
  ServerReflectionRequestSchema, ServerReflectionResponseSchema, type ServerReflectionRequest, type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * What `grpc.reflection.v1` (and `v1alpha`) answer, precomputed once from
 * protobuf-es descriptors: the files exactly as buf compiled them (custom
 * options such as `google.api.http` and the gateway policy included), each
 * with its transitive imports. Protocol-neutral: lib/grpc/reflection.ts serves
 * it over grpc-js, gateway/native/local-services.ts over the gateway's listener.
 */
export interface ReflectionIndex {
  /** Fully-qualified names `list_services` answers, in the order given. */
  readonly services: readonly string[];
  /**
   * Answers one request of a `ServerReflectionInfo` stream. Lookups that fail
   * become an `error_response` (NOT_FOUND; INVALID_ARGUMENT for a request with
   * no question), as the protocol says: the stream stays open.
   */
  answer(request: ServerReflectionRequest): ServerReflectionResponse;
  /** {@link answer} for `grpc.reflection.v1alpha`, whose messages are v1's under another package. */
  answerV1alpha(request: v1alpha.ServerReflectionRequest): v1alpha.ServerReflectionResponse;
}

type MessageResponse = ServerReflectionResponse["messageResponse"];

/**
 * Indexes `services` (listed) and `extraFiles` (described, not listed; e.g.
 * `google/rpc/error_details.proto` for clients decoding error details), with
 * every file they import. Symbols are services, methods, messages, fields,
 * oneofs, enums, enum values (scoped as C++ does: beside their enum) and
 * extensions.
 */
export function createReflectionIndex(services: readonly DescService[], extraFiles: readonly DescFile[] = []): ReflectionIndex {
  const catalog = catalogOf(services, extraFiles);
  const answer = (request: ServerReflectionRequest): ServerReflectionResponse => create(ServerReflectionResponseSchema, {
    validHost: request.host, originalRequest: request, messageResponse: respond(catalog, request.messageRequest),
  });
  return {
    services: catalog.names,
    answer,
    // Same field numbers and types under both packages: re-reading the bytes converts exactly.
    answerV1alpha: (request) => fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(ServerReflectionResponseSchema,
      answer(fromBinary(ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, request))))),
  };
}

/** Everything reflection looks up, computed once. */
interface Catalog {
  readonly names: readonly string[];
  readonly files: ReadonlyMap<string, DescFile>;
  readonly symbols: ReadonlyMap<string, DescFile>;
  readonly messages: ReadonlySet<string>;
  /** Extendee type name → extension number → declaring file. */
  readonly extensions: ReadonlyMap<string, ReadonlyMap<number, DescFile>>;
  /** Each file's encoded answer: the file first, then every file it imports, transitively, each once. */
  readonly closures: ReadonlyMap<DescFile, readonly Uint8Array[]>;
}

function catalogOf(services: readonly DescService[], extraFiles: readonly DescFile[]): Catalog {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  extraFiles.forEach(visit);
  const encoded = new Map([...files.values()].map((f) => [f, toBinary(FileDescriptorProtoSchema, f.proto)]));
  const closures = new Map([...files.values()].map((f) => [f, [...importClosure(f)].map((d) => encoded.get(d)!)]));
  const symbols = new Map<string, DescFile>();
  const messages = new Set<string>();
  const extensions = new Map<string, Map<number, DescFile>>();
  for (const file of files.values()) indexFile(file, symbols, messages, extensions);
  return { names: services.map((s) => s.typeName), files, symbols, messages, extensions, closures };
}

function importClosure(file: DescFile, seen = new Set<DescFile>()): Set<DescFile> {
  if (seen.has(file)) return seen;
  seen.add(file);
  file.dependencies.forEach((d) => importClosure(d, seen));
  return seen;
}

function respond(c: Catalog, req: ServerReflectionRequest["messageRequest"]): MessageResponse {
  const withImports = (file: DescFile): MessageResponse =>
    ({ case: "fileDescriptorResponse", value: create(FileDescriptorResponseSchema, { fileDescriptorProto: [...c.closures.get(file)!] }) });
  switch (req.case) {
    case "listServices":
      return { case: "listServicesResponse", value: create(ListServiceResponseSchema, { service: c.names.map((name) => ({ name })) }) };
    case "fileByFilename":
      return found(c.files.get(req.value), withImports, `file not found: ${req.value}`);
    case "fileContainingSymbol":
      return found(c.symbols.get(req.value), withImports, `symbol not found: ${req.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = req.value;
      return found(c.extensions.get(containingType)?.get(extensionNumber), withImports,
        `extension not found: ${containingType} field ${extensionNumber}`);
    }
    case "allExtensionNumbersOfType":
      return found(c.messages.has(req.value) ? req.value : undefined, (type) => ({
        case: "allExtensionNumbersResponse",
        value: create(ExtensionNumberResponseSchema, { baseTypeName: type, extensionNumber: [...(c.extensions.get(type)?.keys() ?? [])] }),
      }), `message type not found: ${req.value}`);
    case undefined:
      return failure(Code.InvalidArgument, "the request asks nothing: set one of its message_request fields");
  }
}

function found<T>(value: T | undefined, then: (value: T) => MessageResponse, notFound: string): MessageResponse {
  return value === undefined ? failure(Code.NotFound, notFound) : then(value);
}

function failure(code: Code, message: string): MessageResponse {
  // Connect's codes are gRPC's status codes, which error_code carries.
  return { case: "errorResponse", value: create(ErrorResponseSchema, { errorCode: code, errorMessage: message }) };
}

function indexFile(file: DescFile, symbols: Map<string, DescFile>, messages: Set<string>,
  extensions: Map<string, Map<number, DescFile>>): void {
  const add = (name: string) => symbols.set(name, file);
  for (const type of nestedTypes(file)) {
    add(type.typeName);
    switch (type.kind) {
      case "message":
        messages.add(type.typeName);
        type.fields.forEach((f) => add(`${type.typeName}.${f.name}`));
        type.oneofs.forEach((o) => add(`${type.typeName}.${o.name}`));
        break;
      case "enum": {
        const scope = type.parent?.typeName ?? file.proto.package;
        type.values.forEach((v) => add(scope ? `${scope}.${v.name}` : v.name));
        break;
      }
      case "service":
        type.methods.forEach((m) => add(`${type.typeName}.${m.name}`));
        break;
      case "extension": {
        const byNumber = extensions.get(type.extendee.typeName) ?? new Map<number, DescFile>();
        extensions.set(type.extendee.typeName, byNumber.set(type.number, file));
        break;
      }
    }
  }
}

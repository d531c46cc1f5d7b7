import { create, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { fetchFileDescriptors } from "./reflection-client.js";
import { BUILTIN_FILES } from "./reflected-services.js";
import { GREETER, greeterFile } from "./test-support.js";

const common = create(FileDescriptorProtoSchema, { name: "demo/common/v1/common.proto", package: "demo.common.v1", syntax: "proto3" });
const greeter = greeterFile(GREETER);
greeter.dependency.push(common.name);
const FILES = new Map([greeter, common].map((f) => [f.name, f]));

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Answer = v1.ServerReflectionResponse["messageResponse"];

/** Answers one request as grpcio-reflection would, but with the one file asked for (no imports). */
function answer(req: Request, files: ReadonlyMap<string, FileDescriptorProto>): Answer {
  const q = req.messageRequest;
  const file = q.case === "fileByFilename" ? files.get(q.value)
    : q.case === "fileContainingSymbol" ? [...files.values()].find((f) => f.service.some((s) => `${f.package}.${s.name}` === q.value)) : undefined;
  if (file === undefined) return { case: "errorResponse", value: create(v1.ErrorResponseSchema, { errorCode: Code.NotFound, errorMessage: "not found" }) };
  return { case: "fileDescriptorResponse", value: create(v1.FileDescriptorResponseSchema, { fileDescriptorProto: [toBinary(FileDescriptorProtoSchema, file)] }) };
}

/** A reflection server on one version; `asked` records every request. */
function server(version: "v1" | "v1alpha", asked: string[] = []) {
  return createRouterTransport((router: ConnectRouter) => {
    const impl = async function* (requests: AsyncIterable<Request>) {
      for await (const req of requests) {
        asked.push(`${req.messageRequest.case} ${String(req.messageRequest.value)}`);
        yield { originalRequest: req, messageResponse: answer(req, FILES) };
      }
    };
    if (version === "v1") router.service(v1.ServerReflection, { serverReflectionInfo: impl as never });
    else router.service(v1alpha.ServerReflection, { serverReflectionInfo: impl as never });
  });
}

const options = { timeoutMs: 5_000, known: (f: string) => BUILTIN_FILES.has(f) };

describe("fetchFileDescriptors", () => {
  it("asks for each service's file, then for each import the gateway does not have, on one stream", async () => {
    const asked: string[] = [];
    const files = await fetchFileDescriptors(server("v1", asked), ["demo.greeter.v1.Greeter"], options);
    expect([...files.keys()].sort()).toEqual(["demo/common/v1/common.proto", "demo/greeter/v1/greeter.proto"]);
    expect(asked).toEqual(["fileContainingSymbol demo.greeter.v1.Greeter", "fileByFilename demo/common/v1/common.proto"]);
  });

  it("speaks v1alpha to a server that answers v1 UNIMPLEMENTED", async () => {
    const files = await fetchFileDescriptors(server("v1alpha"), ["demo.greeter.v1.Greeter"], options);
    expect(files.get("demo/greeter/v1/greeter.proto")?.service[0]?.name).toBe("Greeter");
  });

  it("refuses with NOT_FOUND naming a service the upstream does not describe", async () => {
    const err = await rejectionOf(fetchFileDescriptors(server("v1"), ["demo.greeter.v1.Nope"], options));
    expect([err.code, err.rawMessage]).toEqual([Code.NotFound, "the upstream's reflection does not describe service demo.greeter.v1.Nope: not found (code 5)"]);
  });

  it("passes on the stream's failure", async () => {
    const down = createRouterTransport((router: ConnectRouter) => {
      router.service(v1.ServerReflection, { serverReflectionInfo: () => { throw new ConnectError("connection refused", Code.Unavailable); } });
    });
    expect((await rejectionOf(fetchFileDescriptors(down, ["demo.greeter.v1.Greeter"], options))).code).toBe(Code.Unavailable);
  });
});

import { create, fromBinary, getOption, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { http } from "../../gen/google/api/annotations_pb.js";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { ServerReflectionRequestSchema, type ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { policy } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createReflectionIndex } from "./reflection-index.js";

const index = createReflectionIndex([AuthService, ProjectService], [file_google_rpc_error_details]);

const ask = (messageRequest: MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"], host = "") =>
  index.answer(create(ServerReflectionRequestSchema, { host, messageRequest }));

/** The file names of a file_descriptor_response, in order. */
function fileNames(r: ServerReflectionResponse): string[] {
  if (r.messageResponse.case !== "fileDescriptorResponse") throw new Error(`expected files, got ${r.messageResponse.case}`);
  return r.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
}

function errorOf(r: ServerReflectionResponse): { code: number; message: string } {
  if (r.messageResponse.case !== "errorResponse") throw new Error(`expected an error, got ${r.messageResponse.case}`);
  return { code: r.messageResponse.value.errorCode, message: r.messageResponse.value.errorMessage };
}

describe("createReflectionIndex", () => {
  it("lists exactly the services it was given, in order", () => {
    const r = ask({ case: "listServices", value: "*" });
    expect(r.messageResponse.case === "listServicesResponse" && r.messageResponse.value.service.map((s) => s.name))
      .toEqual(["mesh.auth.v1.AuthService", "mesh.project.v1.ProjectService"]);
  });

  it("answers a service symbol with its file first, then every transitive import once", () => {
    expect(fileNames(ask({ case: "fileContainingSymbol", value: "mesh.auth.v1.AuthService" }))).toEqual([
      "mesh/auth/v1/auth.proto", "google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto",
      "google/protobuf/timestamp.proto", "mesh/gateway/v1/policy.proto",
    ]);
  });

  it("keeps custom options: the described methods carry google.api.http and the gateway policy as compiled", () => {
    const [first] = (ask({ case: "fileContainingSymbol", value: "mesh.auth.v1.AuthService.Register" }).messageResponse.value as
      { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto;
    const file = fromBinary(FileDescriptorProtoSchema, first!);
    expect(file).toEqual(AuthService.file.proto);
    const register = AuthService.method.register;
    expect(getOption(register, http).pattern).toEqual({ case: "post", value: "/api/v1/auth/register" });
    expect(getOption(register, policy).access).toBeGreaterThan(0);
  });

  it("finds methods, messages, fields, oneofs, enums, enum values and extensions", () => {
    for (const symbol of [
      "mesh.project.v1.ProjectService.CreateProject", "mesh.project.v1.CreateProjectRequest", "mesh.project.v1.CreateProjectRequest.name",
      "google.api.HttpRule.pattern", "mesh.gateway.v1.Access", "mesh.gateway.v1.ACCESS_PUBLIC", "google.api.http", "mesh.gateway.v1.policy",
    ]) {
      expect(fileNames(ask({ case: "fileContainingSymbol", value: symbol })).length, symbol).toBeGreaterThan(0);
    }
    expect(fileNames(ask({ case: "fileContainingSymbol", value: "google.api.http" }))[0]).toBe("google/api/annotations.proto");
  });

  it("answers files by name, extra files included (not listed)", () => {
    expect(fileNames(ask({ case: "fileByFilename", value: "google/api/http.proto" }))).toEqual(["google/api/http.proto"]);
    expect(fileNames(ask({ case: "fileByFilename", value: "google/rpc/error_details.proto" }))[0]).toBe("google/rpc/error_details.proto");
  });

  it("finds the file of an extension by extendee and number, and lists a type's extension numbers", () => {
    const ext = ask({ case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: http.number } });
    expect(fileNames(ext)[0]).toBe("google/api/annotations.proto");
    const numbers = ask({ case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" });
    expect(numbers.messageResponse.case === "allExtensionNumbersResponse" && numbers.messageResponse.value)
      .toMatchObject({ baseTypeName: "google.protobuf.MethodOptions", extensionNumber: expect.arrayContaining([http.number, policy.number]) });
    const none = ask({ case: "allExtensionNumbersOfType", value: "mesh.auth.v1.LoginRequest" });
    expect(none.messageResponse.case === "allExtensionNumbersResponse" && none.messageResponse.value.extensionNumber).toEqual([]);
  });

  it("answers unknown symbols, files, extensions and types with a NOT_FOUND error_response", () => {
    expect(errorOf(ask({ case: "fileContainingSymbol", value: "mesh.auth.v1.Nope" })))
      .toEqual({ code: Code.NotFound, message: "symbol not found: mesh.auth.v1.Nope" });
    expect(errorOf(ask({ case: "fileByFilename", value: "nope.proto" })).code).toBe(Code.NotFound);
    expect(errorOf(ask({ case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 } })).code)
      .toBe(Code.NotFound);
    expect(errorOf(ask({ case: "allExtensionNumbersOfType", value: "mesh.auth.v1.Nope" })).code).toBe(Code.NotFound);
  });

  it("answers a request that asks nothing with INVALID_ARGUMENT", () => {
    expect(errorOf(ask({ case: undefined })).code).toBe(Code.InvalidArgument);
  });

  it("echoes the request as original_request and its host as valid_host", () => {
    const r = ask({ case: "listServices", value: "" }, "gw.example");
    expect([r.validHost, r.originalRequest?.messageRequest.case]).toEqual(["gw.example", "listServices"]);
  });

  it("answers v1alpha requests with the same content in v1alpha messages", () => {
    const r = index.answerV1alpha(create(v1alpha.ServerReflectionRequestSchema, {
      messageRequest: { case: "fileContainingSymbol", value: "mesh.project.v1.ProjectService" },
    }));
    expect(r.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(r.messageResponse.case === "fileDescriptorResponse"
      && fromBinary(FileDescriptorProtoSchema, r.messageResponse.value.fileDescriptorProto[0]!).name).toBe("mesh/project/v1/project.proto");
  });
});

// Fixtures shared by the OpenAPI tests (imported by *.test.ts only).
import { clone, create, createFileRegistry, setExtension, type DescFile, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { http } from "../../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../../gen/google/api/http_pb.js";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { Access, MethodPolicySchema, policy } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { file_mesh_testing_v1_transcoding } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { bindingsOf } from "../transcoding/bindings.js";
import { openApiDocument } from "./document.js";
import type { OpenApiDocument, Operation, PathItemMethod } from "./spec-types.js";

/** The services the gateway serves (as gateway/app.ts GATEWAY_SERVICES). */
export const meshServices: readonly DescService[] = [AuthService, ProjectService, LoggingService, AnalyticsService];

type PolicyInit = MessageInitShape<typeof MethodPolicySchema>;
type RuleInit = MessageInitShape<typeof HttpRuleSchema>;

/**
 * mesh.testing.v1.TranscodingService with a `(mesh.gateway.v1.policy)` on
 * every method (the test proto declares none, so the gateway would refuse
 * it all): `policies[method]`, else access PUBLIC. `rules` replaces the
 * http rule of the methods it names.
 */
export function testService(policies: Readonly<Record<string, PolicyInit>> = {},
  rules: Readonly<Record<string, RuleInit>> = {}): DescService {
  const file = clone(FileDescriptorProtoSchema, file_mesh_testing_v1_transcoding.proto);
  const service = file.service.find((s) => s.name === "TranscodingService");
  for (const method of service?.method ?? []) {
    method.options ??= create(MethodOptionsSchema);
    const rule = rules[method.name];
    if (rule !== undefined) setExtension(method.options, http, create(HttpRuleSchema, rule));
    setExtension(method.options, policy, create(MethodPolicySchema, policies[method.name] ?? { access: Access.PUBLIC }));
  }
  const deps = new Map<string, DescFile>(file_mesh_testing_v1_transcoding.dependencies.map((d) => [d.proto.name, d]));
  const found = createFileRegistry(file, (name) => deps.get(name)).getService("mesh.testing.v1.TranscodingService");
  if (found === undefined) throw new Error("TranscodingService missing");
  return found;
}

/** The document of the mesh's services. */
export function meshDocument(): OpenApiDocument {
  return openApiDocument(bindingsOf(meshServices), { title: "mesh", version: "test" });
}

/** The document of the test service (policies and rules as `testService` takes them). */
export function testDocument(...args: Parameters<typeof testService>): OpenApiDocument {
  return openApiDocument(bindingsOf([testService(...args)]), { title: "testing", version: "test" });
}

/** The operation at `path` for `method` (lower case, or a custom method as written); fails when absent. */
export function operation(doc: OpenApiDocument, path: string, method: PathItemMethod | string): Operation {
  const item = doc.paths[path];
  const op = item?.[method as PathItemMethod] ?? item?.["x-additionalOperations"]?.[method];
  if (op === undefined) throw new Error(`no ${method} ${path}; paths: ${Object.keys(doc.paths).join(", ")}`);
  return op;
}

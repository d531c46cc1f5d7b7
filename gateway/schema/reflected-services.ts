import { create, createFileRegistry, hasExtension, setExtension, type DescFile, type DescService, type FileRegistry } from "@bufbuild/protobuf";
import {
  file_google_protobuf_any, file_google_protobuf_api, file_google_protobuf_descriptor, file_google_protobuf_duration,
  file_google_protobuf_empty, file_google_protobuf_field_mask, file_google_protobuf_source_context, file_google_protobuf_struct,
  file_google_protobuf_timestamp, file_google_protobuf_type, file_google_protobuf_wrappers, MethodOptionsSchema,
  type DescriptorProto, type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { file_google_api_annotations } from "../../gen/google/api/annotations_pb.js";
import { file_google_api_http } from "../../gen/google/api/http_pb.js";
import { file_google_rpc_code } from "../../gen/google/rpc/code_pb.js";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../../gen/google/rpc/status_pb.js";
import { Access, file_mesh_gateway_v1_policy, MethodPolicySchema, policy } from "../../gen/mesh/gateway/v1/policy_pb.js";

/**
 * Files the gateway was built with, by proto file name. A reflected file that
 * imports one of them is linked to the gateway's copy (not asked for): the
 * well-known types keep their special JSON forms, and `google.api.http` and
 * the mesh's policy option are the extensions the gateway reads.
 */
export const BUILTIN_FILES: ReadonlyMap<string, DescFile> = new Map([
  file_google_protobuf_any, file_google_protobuf_api, file_google_protobuf_descriptor, file_google_protobuf_duration,
  file_google_protobuf_empty, file_google_protobuf_field_mask, file_google_protobuf_source_context, file_google_protobuf_struct,
  file_google_protobuf_timestamp, file_google_protobuf_type, file_google_protobuf_wrappers,
  file_google_api_annotations, file_google_api_http, file_google_rpc_code, file_google_rpc_error_details, file_google_rpc_status,
  file_mesh_gateway_v1_policy,
].map((f) => [f.proto.name, f]));

export interface ReflectedServicesOptions {
  /** Fully-qualified names of the services to describe. */
  readonly services: readonly string[];
  /** Access given to a method that declares no `(mesh.gateway.v1.policy)`. */
  readonly defaultAccess: Access;
}

/**
 * Descriptors of `services` built at run time from reflected files (by name;
 * imports of BUILTIN_FILES resolve to the gateway's own). Options stay as the
 * upstream compiled them — `google.api.http` rules and the mesh's policy are
 * read from them as from gen/ — except that each method of `services`
 * without a policy gets `{ access: defaultAccess }` written into its options,
 * so every consumer of the policy (admission, OpenAPI, native gate) sees the
 * default. Mutates `files`: those method options, and json_name where the
 * server left it out (fillJsonNames). Throws an Error naming a
 * missing import, an invalid file or a service no file declares.
 */
export function reflectedServices(files: ReadonlyMap<string, FileDescriptorProto>, opts: ReflectedServicesOptions): DescService[] {
  const wanted = new Set(opts.services);
  for (const file of files.values()) file.messageType.forEach(fillJsonNames);
  const roots = [...files.values()].filter((f) => f.service.some((s) => wanted.has(qualified(f, s.name))));
  for (const file of roots) applyDefaultPolicy(file, wanted, opts.defaultAccess);
  const registries: FileRegistry[] = [];
  const built = (name: string) => BUILTIN_FILES.get(name) ?? registries.map((r) => r.getFile(name)).find((f) => f !== undefined);
  for (const root of roots) {
    if (built(root.name) !== undefined) continue; // imported by an earlier root
    registries.push(createFileRegistry(root, (name) => built(name) ?? files.get(name)));
  }
  return opts.services.map((name) => {
    const found = registries.map((r) => r.getService(name)).find((s) => s !== undefined);
    if (found === undefined) throw new Error(`no reflected file declares the service ${name}`);
    return found;
  });
}

/**
 * protoc fills every field's json_name for its plugins, and protobuf-es
 * relies on it; reflection servers may leave it out (grpcio-reflection does).
 * Fills it as protoc would: `greeted_at` → `greetedAt`.
 */
function fillJsonNames(message: DescriptorProto): void {
  for (const field of message.field) {
    if (field.jsonName === "") field.jsonName = protoCamelCase(field.name);
  }
  message.nestedType.forEach(fillJsonNames);
}

function applyDefaultPolicy(file: FileDescriptorProto, wanted: ReadonlySet<string>, access: Access): void {
  for (const service of file.service) {
    if (!wanted.has(qualified(file, service.name))) continue;
    for (const method of service.method) {
      const options = (method.options ??= create(MethodOptionsSchema));
      if (!hasExtension(options, policy)) setExtension(options, policy, create(MethodPolicySchema, { access }));
    }
  }
}

function qualified(file: FileDescriptorProto, name: string): string {
  return file.package === "" ? name : `${file.package}.${name}`;
}

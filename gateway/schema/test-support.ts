// Fixtures shared by the schema tests (imported by *.test.ts only): reflected files as a server sends them.
import { create, setExtension, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as Type, FileDescriptorProtoSchema, MethodOptionsSchema, type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { http } from "../../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../../gen/google/api/http_pb.js";
import { Access, MethodPolicySchema, policy } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { buildReflectedSchema, type ReflectedSchema } from "./reflected-schema.js";

export { Type, Label };

/** A field: name, number, type; `repeated`, or a message/enum type name (leading dot) for TYPE_MESSAGE/TYPE_ENUM. */
export type FieldSpec = readonly [name: string, number: number, type: Type, extra?: { readonly repeated?: boolean; readonly typeName?: string }];

export interface MethodSpec {
  readonly name: string;
  readonly input: string;
  readonly output: string;
  readonly http?: MessageInitShape<typeof HttpRuleSchema>;
  readonly access?: Access;
  readonly serverStreaming?: boolean;
}

export interface FileSpec {
  readonly name?: string;
  readonly package?: string;
  /** Message name → fields. */
  readonly messages: Readonly<Record<string, readonly FieldSpec[]>>;
  readonly enums?: Readonly<Record<string, readonly string[]>>;
  readonly methods: readonly MethodSpec[];
  /** Service name; default Greeter. */
  readonly service?: string;
}

/**
 * A FileDescriptorProto as grpcio-reflection sends it: `demo/greeter/v1/greeter.proto`
 * (package demo.greeter.v1) importing google/api/annotations.proto and the mesh's
 * policy option, fields without json_name, the http rule and policy as method options.
 */
export function greeterFile(spec: FileSpec): FileDescriptorProto {
  const pkg = spec.package ?? "demo.greeter.v1";
  return create(FileDescriptorProtoSchema, {
    name: spec.name ?? "demo/greeter/v1/greeter.proto",
    package: pkg,
    syntax: "proto3",
    dependency: ["google/api/annotations.proto", "mesh/gateway/v1/policy.proto"],
    messageType: Object.entries(spec.messages).map(([name, fields]) => ({
      name,
      field: fields.map(([fieldName, number, type, extra]) => ({
        name: fieldName, number, type, label: extra?.repeated ? Label.REPEATED : Label.OPTIONAL, typeName: extra?.typeName,
      })),
    })),
    enumType: Object.entries(spec.enums ?? {}).map(([name, values]) => ({ name, value: values.map((v, number) => ({ name: v, number })) })),
    service: [{
      name: spec.service ?? "Greeter",
      method: spec.methods.map((m) => {
        const options = create(MethodOptionsSchema);
        if (m.http) setExtension(options, http, create(HttpRuleSchema, m.http));
        if (m.access !== undefined) setExtension(options, policy, create(MethodPolicySchema, { access: m.access }));
        return { name: m.name, inputType: `.${pkg}.${m.input}`, outputType: `.${pkg}.${m.output}`, options, serverStreaming: m.serverStreaming ?? false };
      }),
    }],
  });
}

/** The base Greeter: SayHello (GET, public) and CreateGreeting (POST, no policy). */
export const GREETER: FileSpec = {
  messages: {
    SayHelloRequest: [["name", 1, Type.STRING], ["language", 2, Type.STRING]],
    SayHelloResponse: [["message", 1, Type.STRING], ["greeted_at", 2, Type.STRING]],
    CreateGreetingRequest: [["text", 1, Type.STRING], ["times", 2, Type.INT64]],
    CreateGreetingResponse: [["id", 1, Type.STRING], ["text", 2, Type.STRING]],
  },
  methods: [
    { name: "SayHello", input: "SayHelloRequest", output: "SayHelloResponse", http: { pattern: { case: "get", value: "/api/v1/greeter/{name}" } }, access: Access.PUBLIC },
    { name: "CreateGreeting", input: "CreateGreetingRequest", output: "CreateGreetingResponse", http: { pattern: { case: "post", value: "/api/v1/greetings" }, body: "*" } },
  ],
};

/** The files of `spec` keyed by name, as fetchFileDescriptors answers them (built-in imports left out). */
export function filesOf(spec: FileSpec): Map<string, FileDescriptorProto> {
  const file = greeterFile(spec);
  return new Map([[file.name, file]]);
}

/** The schema of `spec`'s Greeter, built as the gateway builds a reflected one (default access USER). */
export function schemaOf(spec: FileSpec, defaultAccess = Access.USER): ReflectedSchema {
  return buildReflectedSchema(filesOf(spec), [`${spec.package ?? "demo.greeter.v1"}.${spec.service ?? "Greeter"}`], defaultAccess);
}

// Fixtures shared by the transcoding tests (imported by *.test.ts only).
import { clone, create, createFileRegistry, setExtension, type DescFile, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptionsSchema, TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ConnectError, Code } from "@connectrpc/connect";
import { http } from "../../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../../gen/google/api/http_pb.js";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { fieldViolationsOf, type FieldViolation } from "../../lib/errors.js";
import { file_mesh_testing_v1_transcoding, TranscodingService } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { bindingsOf, type HttpBinding } from "./bindings.js";
import { canonicalPath, type CanonicalPath } from "./path.js";
import { buildRequest } from "./request.js";

export const meshServices: readonly DescService[] = [AuthService, ProjectService, LoggingService, AnalyticsService];
export const allServices: readonly DescService[] = [...meshServices, TranscodingService];

const all = bindingsOf(allServices);

/** The binding of `Service.Method` (by RPC name) for `verb`, or its only binding. */
export function bindingFor(service: DescService, method: string, verb?: string, index = 0): HttpBinding {
  const found = all.filter((b) => b.service === service && b.method.name === method && (verb === undefined || b.verb === verb));
  const b = found[index];
  if (b === undefined) throw new Error(`no binding ${service.typeName}.${method} ${verb ?? ""}`);
  return b;
}

/** canonicalPath that must accept `raw`. */
export function canonical(raw: string): CanonicalPath {
  const p = canonicalPath(raw);
  if (p.kind === "rejected") throw new Error(`${raw} rejected: ${p.reason}`);
  return p;
}

/** The field violations of the INVALID_ARGUMENT `fn` throws; fails when it throws anything else or nothing. */
export function violationsOf(fn: () => unknown): FieldViolation[] {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ConnectError) || e.code !== Code.InvalidArgument) throw e;
    return fieldViolationsOf(e);
  }
  throw new Error("expected INVALID_ARGUMENT, but it succeeded");
}

/** An http rule as written in a .proto: `{ get: "/v1/x", body: "*", additionalBindings: [...] }`. */
export interface RuleInit {
  readonly get?: string;
  readonly put?: string;
  readonly post?: string;
  readonly delete?: string;
  readonly patch?: string;
  readonly custom?: { readonly kind: string; readonly path: string };
  readonly body?: string;
  readonly responseBody?: string;
  readonly additionalBindings?: readonly RuleInit[];
}

function ruleOf(r: RuleInit): MessageInitShape<typeof HttpRuleSchema> {
  const verbs = ["get", "put", "post", "delete", "patch"] as const;
  const verb = verbs.find((v) => r[v] !== undefined);
  const pattern = r.custom !== undefined ? { case: "custom" as const, value: r.custom }
    : verb !== undefined ? { case: verb, value: r[verb] ?? "" } : undefined;
  return {
    ...(pattern && { pattern }),
    body: r.body ?? "",
    responseBody: r.responseBody ?? "",
    additionalBindings: (r.additionalBindings ?? []).map(ruleOf),
  };
}

/**
 * mesh.testing.v1.TranscodingService rebuilt with the given http rules
 * (by RPC name; undefined removes the rule), to test rule validation with
 * rules no proto in the repository may carry.
 */
export function serviceWithRules(rules: Readonly<Record<string, RuleInit | undefined>>): DescService {
  const file = clone(FileDescriptorProtoSchema, file_mesh_testing_v1_transcoding.proto);
  const service = file.service.find((s) => s.name === "TranscodingService");
  for (const method of service?.method ?? []) {
    if (!(method.name in rules)) continue;
    method.options = create(MethodOptionsSchema);
    const rule = rules[method.name];
    if (rule !== undefined) setExtension(method.options, http, create(HttpRuleSchema, ruleOf(rule)));
  }
  const deps = new Map<string, DescFile>(file_mesh_testing_v1_transcoding.dependencies.map((d) => [d.proto.name, d]));
  const registry = createFileRegistry(file, (name) => deps.get(name));
  const rebuilt = registry.getService("mesh.testing.v1.TranscodingService");
  if (rebuilt === undefined) throw new Error("TranscodingService missing");
  return rebuilt;
}

/** The binding of `method` in TranscodingService rebuilt with `rule`. */
export function ruleBinding(method: string, rule: RuleInit): HttpBinding {
  const b = bindingsOf([serviceWithRules({ [method]: rule })]).find((x) => x.method.name === method);
  if (b === undefined) throw new Error(`no binding for ${method}`);
  return b;
}

/** A request as the tests write it: the query as text. */
export interface Parts {
  readonly vars?: Record<string, string>;
  readonly query?: string;
  readonly body?: unknown;
}

/** buildRequest, typed as the message the test expects. */
export function build<T>(binding: HttpBinding, { vars = {}, query = "", body }: Parts = {}): T {
  return buildRequest(binding, { vars, query: new URLSearchParams(query), body }) as T;
}

/** The violations buildRequest throws; fails when it succeeds. */
export function violations(binding: HttpBinding, parts: Parts): FieldViolation[] {
  return violationsOf(() => build(binding, parts));
}

/** The fields named by the violations buildRequest throws. */
export function fieldsOf(binding: HttpBinding, parts: Parts): string[] {
  return violations(binding, parts).map((v) => v.field);
}

/** A google.protobuf.Timestamp. */
export function timestamp(seconds: bigint, nanos = 0): Timestamp {
  return create(TimestampSchema, { seconds, nanos });
}

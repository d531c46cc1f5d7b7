import { getOption, hasOption, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { parsePathTemplate, PathTemplateError, type PathTemplate } from "../../lib/path-template.js";
import { fieldByProtoName, isPlainMessage } from "./fields.js";

/**
 * One REST route of one RPC: a google.api.http rule or one of its
 * additional_bindings. The descriptor fields after `service` are resolved
 * once here, so requests never look fields up by name.
 */
export interface HttpBinding {
  /** GET, POST, PUT, PATCH, DELETE, or a custom pattern's kind as written. */
  readonly verb: string;
  readonly template: PathTemplate;
  /** "" (no body), "*" (the whole request) or a top-level input field's proto name. */
  readonly body: string;
  /** "" (the whole response) or a top-level output field's proto name. */
  readonly responseBody: string;
  readonly method: DescMethod;
  readonly service: DescService;
  /** The field named by `body`; undefined for "" and "*". */
  readonly bodyField: DescField | undefined;
  /** The field named by `responseBody`; undefined for "". */
  readonly responseBodyField: DescField | undefined;
  /** Each template variable's fields from the input root, keyed by its dotted proto path. */
  readonly pathFields: ReadonlyMap<string, readonly DescField[]>;
  /**
   * The `update_mask` FieldMask the gateway fills from the body's JSON keys
   * when the client sends none: set only for PATCH with `body: "<field>"`
   * (AIP-134 style), undefined otherwise.
   */
  readonly autoUpdateMask: DescField | undefined;
}

/** Every problem found in the http rules, one per line in the message. */
export class HttpRuleError extends Error {
  override name = "HttpRuleError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid google.api.http rules:\n  - ${problems.join("\n  - ")}`);
  }
}

/**
 * One binding per google.api.http rule and per additional binding of the
 * services' methods, in declaration order. Methods without a rule are
 * internal and skipped. Each rule is checked against the method's messages;
 * throws HttpRuleError listing every problem: a malformed template, a
 * variable naming a missing or non-scalar field, a body or response_body
 * naming a missing field, nested additional_bindings, a GET with a body, a
 * body field also bound by the path, a client-streaming method.
 */
export function bindingsOf(services: readonly DescService[]): HttpBinding[] {
  const bindings: HttpBinding[] = [];
  const problems: string[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
        problems.push(`${method.parent.typeName}.${method.name}: client-streaming methods cannot have an HTTP rule`);
      }
      const rules = [rule, ...rule.additionalBindings];
      rules.forEach((r, i) => {
        const label = `${method.parent.typeName}.${method.name}${i === 0 ? "" : ` additional_bindings[${i - 1}]`}`;
        const found = problemsOf(r, i > 0, method);
        problems.push(...found.map((p) => `${label}: ${p}`));
        if (found.length === 0) bindings.push(bindingOf(r, method, service));
      });
    }
  }
  if (problems.length > 0) throw new HttpRuleError(problems);
  return bindings;
}

function verbAndPath(rule: HttpRule): { verb: string; path: string } | undefined {
  const p = rule.pattern;
  if (p.case === undefined) return undefined;
  if (p.case === "custom") return { verb: p.value.kind, path: p.value.path };
  return { verb: p.case.toUpperCase(), path: p.value };
}

function problemsOf(rule: HttpRule, additional: boolean, method: DescMethod): string[] {
  const problems: string[] = [];
  if (additional && rule.additionalBindings.length > 0) problems.push("additional_bindings must not nest");
  const vp = verbAndPath(rule);
  if (vp === undefined) return [...problems, "no HTTP method and path"];
  if (vp.verb === "") problems.push("custom pattern without a kind");
  if (vp.verb === "GET" && rule.body !== "") problems.push(`GET must not have a body (body: "${rule.body}")`);
  let template: PathTemplate | undefined;
  try {
    template = parsePathTemplate(vp.path);
  } catch (e) {
    if (!(e instanceof PathTemplateError)) throw e;
    problems.push(e.message);
  }
  for (const v of template?.variables ?? []) {
    const problem = variableProblem(method.input, v.fieldPath);
    if (problem !== undefined) problems.push(`variable "{${v.fieldPath.join(".")}}" ${problem}`);
    if (v.fieldPath.length === 1 && v.fieldPath[0] === rule.body) {
      problems.push(`body field "${rule.body}" is also bound by the path`);
    }
  }
  if (rule.body !== "" && rule.body !== "*" && fieldByProtoName(method.input, rule.body) === undefined) {
    problems.push(`body "${rule.body}" names no top-level field of ${method.input.typeName}`);
  }
  if (rule.responseBody !== "" && fieldByProtoName(method.output, rule.responseBody) === undefined) {
    problems.push(`response_body "${rule.responseBody}" names no top-level field of ${method.output.typeName}`);
  }
  return problems;
}

/** Why a template variable cannot bind `path`, or undefined when it can. */
function variableProblem(input: DescMessage, path: readonly string[]): string | undefined {
  let message: DescMessage = input;
  for (const [i, name] of path.entries()) {
    const f = fieldByProtoName(message, name);
    if (f === undefined) return `names no field of ${input.typeName} ("${name}" is not a field of ${message.typeName})`;
    if (i === path.length - 1) {
      return f.fieldKind === "scalar" || f.fieldKind === "enum"
        ? undefined
        : `must name a singular scalar or enum field ("${name}" is a ${f.fieldKind} field)`;
    }
    if (f.fieldKind !== "message" || !isPlainMessage(f.message)) {
      return `cannot reach into "${name}": it is not a singular message field whose JSON is an object`;
    }
    message = f.message;
  }
  return undefined;
}

/** Fields along a proto-name path that problemsOf already checked. */
function fieldsAlong(input: DescMessage, path: readonly string[]): DescField[] {
  const fields: DescField[] = [];
  let message: DescMessage | undefined = input;
  for (const name of path) {
    const f: DescField | undefined = message && fieldByProtoName(message, name);
    if (f === undefined) throw new Error(`unchecked field path ${path.join(".")}`);
    fields.push(f);
    message = f.fieldKind === "message" ? f.message : undefined;
  }
  return fields;
}

function bindingOf(rule: HttpRule, method: DescMethod, service: DescService): HttpBinding {
  const vp = verbAndPath(rule) ?? { verb: "", path: "" };
  const template = parsePathTemplate(vp.path);
  const bodyField = rule.body === "" || rule.body === "*" ? undefined : fieldByProtoName(method.input, rule.body);
  const mask = fieldByProtoName(method.input, "update_mask");
  const maskable = vp.verb === "PATCH" && bodyField?.fieldKind === "message" && mask?.fieldKind === "message"
    && mask.message.typeName === FieldMaskSchema.typeName;
  return {
    verb: vp.verb,
    template,
    body: rule.body,
    responseBody: rule.responseBody,
    method,
    service,
    bodyField,
    responseBodyField: rule.responseBody === "" ? undefined : fieldByProtoName(method.output, rule.responseBody),
    pathFields: new Map(template.variables.map((v) => [v.fieldPath.join("."), fieldsAlong(method.input, v.fieldPath)])),
    autoUpdateMask: maskable ? mask : undefined,
  };
}

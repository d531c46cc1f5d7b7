import { mergeFromJson, ScalarType, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { FieldMaskSchema, isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import type { HttpBinding } from "./bindings.js";
import { MAX_VIOLATIONS, type Violations } from "./body.js";
import { expectedValue, fieldByJsonKey, isPlainMessage, nestJson, quote } from "./fields.js";

/** Well-known types whose JSON is a string a query parameter can carry as is. */
const STRING_WKTS = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration"]);

interface Param {
  readonly key: string;
  readonly fields: readonly DescField[];
  readonly values: string[];
}

/**
 * Fills `msg` from query parameters. A parameter names a field path by
 * dots, each segment the JSON name or the proto name (`filter.minSizeBytes`,
 * `filter.min_size_bytes`). Values are text: numbers and 64-bit integers as
 * decimal strings, bool as `true`/`false`, enums by name or number,
 * Timestamp as RFC 3339, Duration as "1.5s", FieldMask as comma-separated
 * paths, wrappers as their scalar. A repeated field takes the parameter
 * repeated (`?tags=a&tags=b`); commas are NOT split (values may contain
 * them), except in a FieldMask. Adds a violation, named by the parameter as
 * sent, for each unknown parameter, each field a parameter cannot set (maps,
 * messages, the body's fields, path variables, every field when the body is
 * "*"), each singular field given twice, each invalid value.
 */
export function applyQuery(binding: HttpBinding, msg: Message, query: URLSearchParams, out: Violations): void {
  const params = new Map<string, Param>();
  const oneofs = new Map<string, string>();
  for (const key of new Set(query.keys())) {
    if (out.list.length >= MAX_VIOLATIONS) return;
    const fields = binding.body === "*" ? undefined : resolve(binding.method.input, key);
    const problem = fields === undefined ? unresolved(binding) : refusal(binding, fields, oneofs);
    if (problem !== undefined || fields === undefined) {
      out.add(key, problem ?? "unknown query parameter");
      continue;
    }
    const path = fields.map((f) => f.name).join(".");
    const param = params.get(path) ?? { key, fields, values: [] };
    param.values.push(...query.getAll(key));
    params.set(path, param);
  }
  for (const param of params.values()) applyParam(binding.method.input, msg, param, out);
}

function unresolved(binding: HttpBinding): string {
  return binding.body === "*"
    ? "query parameters are not accepted here: the request body carries the whole request"
    : "unknown query parameter";
}

/**
 * Why a parameter may not set these fields, or undefined when it may.
 * `oneofs` records, per message path and oneof, the member a parameter set.
 */
function refusal(binding: HttpBinding, fields: readonly DescField[], oneofs: Map<string, string>): string | undefined {
  const path = fields.map((f) => f.name).join(".");
  if (fields[0] === binding.bodyField) return "is part of the request body, not a query parameter";
  if (binding.pathFields.has(path)) return "is set by the URL path";
  const oneof = fields[fields.length - 1]?.oneof;
  if (oneof === undefined) return undefined;
  const group = `${fields.slice(0, -1).map((f) => f.name).join(".")}#${oneof.name}`;
  const rival = oneofs.get(group);
  if (rival !== undefined && rival !== path) return `only one of the "${oneof.name}" fields may be set`;
  oneofs.set(group, path);
  return undefined;
}

/** The fields a dotted parameter name walks through, or undefined when it names none. */
function resolve(input: DescMessage, key: string): DescField[] | undefined {
  const fields: DescField[] = [];
  let message: DescMessage | undefined = input;
  for (const segment of key.split(".")) {
    const f: DescField | undefined = message && fieldByJsonKey(message, segment);
    if (f === undefined) return undefined;
    fields.push(f);
    message = f.fieldKind === "message" && isPlainMessage(f.message) ? f.message : undefined;
  }
  return fields;
}

function applyParam(input: DescMessage, msg: Message, { key, fields, values }: Param, out: Violations): void {
  const leaf = fields[fields.length - 1];
  if (leaf === undefined) return;
  const parsed = paramJson(leaf, values);
  if (parsed.kind === "problem") return void out.add(key, parsed.problem);
  try {
    mergeFromJson(input, msg, nestJson(fields, parsed.json));
  } catch {
    out.add(key, `expected ${expectedValue(leaf)}, got ${quote(values.length === 1 ? values[0] : values)}`);
  }
}

/** The JSON value the parameter's text values stand for, or the reason the field cannot take them. */
function paramJson(field: DescField, values: readonly string[]): ParamJson {
  if (field.fieldKind === "message" && field.message.typeName === FieldMaskSchema.typeName) {
    return { kind: "json", json: fieldMaskJson(values) };
  }
  const unsettable = { kind: "problem", problem: "cannot be set from a query parameter" } as const;
  if (field.fieldKind === "list") {
    const items = values.map((v) => textJson(field, v));
    return items.includes(undefined) ? unsettable : { kind: "json", json: items as JsonValue[] };
  }
  if (values.length > 1) return { kind: "problem", problem: "is given more than once but takes one value" };
  const json = textJson(field, values[0] ?? "");
  return json === undefined ? unsettable : { kind: "json", json };
}

type ParamJson = { readonly kind: "json"; readonly json: JsonValue } | { readonly kind: "problem"; readonly problem: string };

/**
 * The JSON form of one text value for a scalar, enum, Timestamp, Duration or
 * wrapper field (or an item of a list of them); undefined for other fields.
 * Used for query parameters and path variables alike.
 */
export function textJson(field: DescField, text: string): JsonValue | undefined {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind;
  if (kind === "scalar" && field.scalar !== undefined) return scalarJson(field.scalar, text);
  if (kind === "enum") return /^-?\d+$/.test(text) ? Number(text) : text;
  const message = kind === "message" ? field.message : undefined;
  if (message === undefined) return undefined;
  if (isWrapperDesc(message)) return scalarJson(message.fields[0].scalar, text);
  return STRING_WKTS.has(message.typeName) ? text : undefined;
}

/** Numbers stay strings: proto3 JSON accepts every number type as a decimal string. */
function scalarJson(scalar: ScalarType, text: string): JsonValue {
  if (scalar !== ScalarType.BOOL) return text;
  return text === "true" ? true : text === "false" ? false : text;
}

/**
 * FieldMask JSON from comma-separated paths, each written in lowerCamelCase
 * or snake_case (`owner.displayName`, `owner.display_name`); repeating the
 * parameter adds paths.
 */
function fieldMaskJson(values: readonly string[]): JsonValue {
  const paths = values.flatMap((v) => (v === "" ? [] : v.split(",")));
  return paths.map((p) => p.split(".").map(protoCamelCase).join(".")).join(",");
}

import { fromJson, mergeFromJson, type DescField, type DescMessage, type DescOneof, type JsonValue, type Message } from "@bufbuild/protobuf";
import type { createViolations } from "../../lib/errors.js";
import type { HttpBinding } from "./bindings.js";
import { expectedJson, expectedValue, fieldByJsonKey, isJsonObject, isPlainMessage, quote } from "./fields.js";

/** The collector of lib/errors that request building adds to and throws from. */
export type Violations = ReturnType<typeof createViolations>;

/** Violations past this many are dropped, so a hostile body cannot grow the error without bound. */
export const MAX_VIOLATIONS = 50;
/** Deeper JSON is refused rather than walked (protobuf-es's own recursion limit is 100). */
const MAX_DEPTH = 64;
/** The field name violations about the body as a whole use. */
const BODY = "body";

/**
 * Decodes the JSON body into `msg` as the binding says: "" takes no body,
 * "*" fills the whole message (an absent body is `{}`), a field name fills
 * that field. Proto3 JSON, unknown fields refused. On failure adds a violation
 * per unknown field and per invalid value, named by the path of JSON keys as
 * the client wrote them, relative to the body (`owner.email`, `tags[2]`).
 * Returns whether the body was applied without violations.
 */
export function applyBody(binding: HttpBinding, msg: Message, body: unknown, out: Violations): boolean {
  const input = binding.method.input;
  if (binding.body === "") {
    if (body === undefined) return true;
    out.add(BODY, "this route takes no request body");
    return false;
  }
  const field = binding.bodyField;
  const value = (body === undefined && field === undefined ? {} : body) as JsonValue | undefined;
  if (value === undefined) return true;
  if (field === undefined && !isJsonObject(value)) {
    out.add(BODY, `expected a JSON object, got ${quote(value)}`);
    return false;
  }
  const json = field === undefined ? value : { [field.jsonName]: value };
  try {
    // Fast path: a valid body decodes in one pass; only a bad one is walked to name every problem.
    mergeFromJson(input, msg, json);
    return true;
  } catch (e) {
    const before = out.list.length;
    if (field === undefined) objectViolations(input, value, "", out, 0);
    else valueViolations(field, value, "", out, 0);
    if (out.list.length === before) out.add(BODY, e instanceof Error ? e.message : "invalid JSON body");
    return false;
  }
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function objectViolations(message: DescMessage, json: JsonValue, path: string, out: Violations, depth: number): void {
  if (!isJsonObject(json)) return void out.add(path || BODY, `expected a JSON object, got ${quote(json)}`);
  if (depth > MAX_DEPTH) return void out.add(path || BODY, "nested too deeply");
  const seen = new Map<DescField, string>();
  const oneofs = new Map<DescOneof, string>();
  for (const [key, value] of Object.entries(json)) {
    if (out.list.length >= MAX_VIOLATIONS) return;
    const p = join(path, key);
    const field = fieldByJsonKey(message, key);
    if (field === undefined) {
      out.add(p, "unknown field");
      continue;
    }
    const twin = seen.get(field);
    seen.set(field, key);
    if (twin !== undefined) {
      out.add(p, `sets the same field as "${join(path, twin)}"`);
      continue;
    }
    const rival = field.oneof === undefined || value === null ? undefined : oneofs.get(field.oneof);
    if (rival !== undefined) {
      out.add(p, `only one of the "${field.oneof?.name}" fields may be set, and "${join(path, rival)}" is`);
      continue;
    }
    if (field.oneof !== undefined && value !== null) oneofs.set(field.oneof, key);
    valueViolations(field, value, p, out, depth + 1);
  }
}

function valueViolations(field: DescField, value: JsonValue, path: string, out: Violations, depth: number): void {
  if (value === null) return; // null resets a field to its default; protobuf-es accepts it
  const name = path || BODY;
  if (field.fieldKind === "message" && isPlainMessage(field.message)) {
    return objectViolations(field.message, value, path, out, depth);
  }
  if (field.fieldKind === "list" && Array.isArray(value)) {
    value.forEach((item, i) => {
      const p = `${path}[${i}]`;
      if (out.list.length >= MAX_VIOLATIONS) return;
      if (item === null) out.add(p, "must not be null");
      else if (field.listKind === "message" && isPlainMessage(field.message)) objectViolations(field.message, item, p, out, depth);
      else if (!decodes(field, [item])) out.add(p, `expected ${expectedValue(field)}, got ${quote(item)}`);
    });
    return;
  }
  if (field.fieldKind === "map" && isJsonObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const p = `${path}[${JSON.stringify(key)}]`;
      if (out.list.length >= MAX_VIOLATIONS) return;
      const plain = field.mapKind === "message" && isPlainMessage(field.message);
      if (plain && !decodes(field, { [key]: {} })) out.add(p, "invalid map key");
      else if (plain) objectViolations(field.message, item, p, out, depth);
      else if (!decodes(field, { [key]: item })) out.add(p, `expected ${expectedValue(field)}, got ${quote(item)}`);
    }
    return;
  }
  if (!decodes(field, value)) out.add(name, `expected ${expectedJson(field)}, got ${quote(value)}`);
}

/** Whether `value` alone is valid JSON for the field. */
function decodes(field: DescField, value: JsonValue): boolean {
  try {
    fromJson(field.parent, { [field.jsonName]: value });
    return true;
  } catch {
    return false;
  }
}

import { create, mergeFromJson, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { isReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { createViolations } from "../../lib/errors.js";
import type { HttpBinding } from "./bindings.js";
import { applyBody, type Violations } from "./body.js";
import { expectedValue, fieldByJsonKey, isJsonObject, isPlainMessage, jsonAt, nestJson, quote } from "./fields.js";
import { applyQuery, textJson } from "./query.js";

/** What the HTTP server extracted from a request that matched `binding`. */
export interface RequestParts {
  /** Path variables from Router.match: dotted proto field path → decoded value. */
  readonly vars: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed JSON body, or undefined when the request has none. */
  readonly body: unknown;
}

/**
 * The request message of `binding.method` for an HTTP request, transcoded
 * as grpc-gateway and Envoy's grpc_json_transcoder do: the body per
 * `binding.body` (see applyBody), then path variables, then query
 * parameters (see applyQuery; none accepted when the body is "*"). A path
 * variable the body also sets must carry the same value. For a PATCH whose
 * input has an `update_mask` FieldMask and whose body is a field, a client
 * that sends no mask gets one naming the body's keys (see updateMaskPaths).
 *
 * Throws ConnectError INVALID_ARGUMENT whose google.rpc.BadRequest names
 * every problem found (unknown fields and parameters, invalid values,
 * collisions), at most MAX_VIOLATIONS of them. Throws a plain Error when
 * `vars` holds a variable `binding` does not declare (a caller bug).
 */
export function buildRequest(binding: HttpBinding, parts: RequestParts): Message {
  const input = binding.method.input;
  const msg = create(input);
  const out = createViolations();
  const bodyApplied = applyBody(binding, msg, parts.body, out);
  for (const [path, value] of Object.entries(parts.vars)) {
    applyVariable(binding, msg, { path, value, body: bodyApplied ? parts.body : undefined }, out);
  }
  applyQuery(binding, msg, parts.query, out);
  out.throwIfAny();
  const mask = binding.autoUpdateMask;
  const bodyMessage = binding.bodyField?.fieldKind === "message" ? binding.bodyField.message : undefined;
  const r = reflect(input, msg);
  if (mask !== undefined && bodyMessage !== undefined && !r.isSet(mask) && isJsonObject(parts.body)) {
    const paths = updateMaskPaths(bodyMessage, parts.body);
    r.set(mask, reflect(FieldMaskSchema, create(FieldMaskSchema, { paths })));
  }
  return msg;
}

interface Variable {
  readonly path: string;
  readonly value: string;
  /** The body when it decoded cleanly, to check for a collision; undefined otherwise. */
  readonly body: unknown;
}

function applyVariable(binding: HttpBinding, msg: Message, v: Variable, out: Violations): void {
  const fields = binding.pathFields.get(v.path);
  const leaf = fields?.[fields.length - 1];
  if (fields === undefined || leaf === undefined) throw new Error(`no variable ${v.path} in ${binding.template.source}`);
  const json = textJson(leaf, v.value);
  const input = binding.method.input;
  try {
    if (json === undefined) throw new Error(`variable ${v.path} is not scalar`);
    const fromPath = nestJson(fields, json);
    if (bodyValueAt(binding, v.body, fields) !== undefined && !sameValue(input, msg, fromPath, fields)) {
      out.add(v.path, "is set by both the URL path and the body, to different values");
      return;
    }
    mergeFromJson(input, msg, fromPath);
  } catch {
    out.add(v.path, `expected ${expectedValue(leaf)}, got ${quote(v.value)}`);
  }
}

/** The JSON the body gives the fields a path variable binds, or undefined when it gives none. */
function bodyValueAt(binding: HttpBinding, body: unknown, fields: readonly DescField[]): JsonValue | undefined {
  if (body === undefined || binding.body === "") return undefined;
  if (binding.body === "*") return jsonAt(body as JsonValue, fields);
  return fields[0] === binding.bodyField ? jsonAt(body as JsonValue, fields.slice(1)) : undefined;
}

/** Whether the body already put into `msg` the value the path's JSON decodes to. */
function sameValue(input: DescMessage, msg: Message, fromPath: JsonValue, fields: readonly DescField[]): boolean {
  const probe = mergeFromJson(input, create(input), fromPath);
  const a = valueAt(input, msg, fields);
  const b = valueAt(input, probe, fields);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

function valueAt(input: DescMessage, msg: Message, fields: readonly DescField[]): unknown {
  let r = reflect(input, msg);
  for (const f of fields.slice(0, -1)) {
    const next: unknown = r.get(f);
    if (!isReflectMessage(next)) return undefined;
    r = next;
  }
  const leaf = fields[fields.length - 1];
  return leaf === undefined ? undefined : r.get(leaf);
}

/**
 * The update mask for a PATCH body: the proto path of each key the client
 * sent, in order. A key whose value is a non-empty JSON object of a plain
 * message field yields the paths inside it (`{"owner":{"email":…}}` →
 * `owner.email`); any other key yields its own path: scalars, lists, maps,
 * well-known types (Timestamp, Struct, wrappers…), `null` (clear the field)
 * and `{}` (reset the whole message).
 */
export function updateMaskPaths(message: DescMessage, body: Readonly<Record<string, unknown>>, prefix = ""): string[] {
  const paths: string[] = [];
  for (const [key, value] of Object.entries(body)) {
    const f = fieldByJsonKey(message, key);
    if (f === undefined) continue;
    const path = `${prefix}${f.name}`;
    if (f.fieldKind === "message" && isPlainMessage(f.message) && isJsonObject(value) && Object.keys(value).length > 0) {
      paths.push(...updateMaskPaths(f.message, value, `${path}.`));
    } else paths.push(path);
  }
  return paths;
}

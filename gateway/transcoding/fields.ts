import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { hasCustomJsonRepresentation, isWrapperDesc } from "@bufbuild/protobuf/wkt";

/** Fields by proto name and by lowerCamelCase JSON name, built once per message. */
const byJsonKey = new WeakMap<DescMessage, ReadonlyMap<string, DescField>>();

/** The field a JSON key or query parameter segment names: its JSON name or its proto name. */
export function fieldByJsonKey(message: DescMessage, key: string): DescField | undefined {
  let index = byJsonKey.get(message);
  if (index === undefined) {
    const map = new Map<string, DescField>();
    for (const f of message.fields) map.set(f.name, f).set(f.jsonName, f);
    byJsonKey.set(message, map);
    index = map;
  }
  return index.get(key);
}

/** The field with this proto name, as google.api.http rules name fields. */
export function fieldByProtoName(message: DescMessage, name: string): DescField | undefined {
  return message.fields.find((f) => f.name === name);
}

/** A message whose JSON is its fields as an object (not a well-known type with its own JSON form). */
export function isPlainMessage(message: DescMessage): boolean {
  return !hasCustomJsonRepresentation(message);
}

/** A JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `{ a: { b: value } }` for fields [a, b], keyed by JSON names, as mergeFromJson takes it. */
export function nestJson(fields: readonly DescField[], value: JsonValue): JsonObject {
  let json: JsonValue = value;
  for (let i = fields.length - 1; i >= 0; i--) json = { [fields[i]?.jsonName ?? ""]: json };
  return json as JsonObject;
}

/** The value at fields [a, b] of a JSON object when every key is written either way; undefined when absent or null. */
export function jsonAt(json: JsonValue | undefined, fields: readonly DescField[]): JsonValue | undefined {
  let node = json;
  for (const f of fields) {
    if (!isJsonObject(node)) return undefined;
    node = node[f.jsonName] ?? node[f.name];
  }
  return node === null ? undefined : node;
}

const SCALAR_EXPECTED: Readonly<Record<ScalarType, string>> = {
  [ScalarType.STRING]: "a string",
  [ScalarType.BOOL]: "true or false",
  [ScalarType.BYTES]: "base64-encoded bytes",
  [ScalarType.DOUBLE]: "a number",
  [ScalarType.FLOAT]: "a 32-bit floating point number",
  [ScalarType.INT32]: "a 32-bit integer",
  [ScalarType.SINT32]: "a 32-bit integer",
  [ScalarType.SFIXED32]: "a 32-bit integer",
  [ScalarType.UINT32]: "an unsigned 32-bit integer",
  [ScalarType.FIXED32]: "an unsigned 32-bit integer",
  [ScalarType.INT64]: 'a 64-bit integer (as a string, e.g. "123")',
  [ScalarType.SINT64]: 'a 64-bit integer (as a string, e.g. "123")',
  [ScalarType.SFIXED64]: 'a 64-bit integer (as a string, e.g. "123")',
  [ScalarType.UINT64]: 'an unsigned 64-bit integer (as a string, e.g. "123")',
  [ScalarType.FIXED64]: 'an unsigned 64-bit integer (as a string, e.g. "123")',
};

const WKT_EXPECTED: Readonly<Record<string, string>> = {
  "google.protobuf.Timestamp": "an RFC 3339 timestamp such as 2026-01-02T15:04:05Z",
  "google.protobuf.Duration": 'a duration in seconds such as "1.5s"',
  "google.protobuf.FieldMask": "comma-separated field paths",
  "google.protobuf.Struct": "a JSON object",
  "google.protobuf.ListValue": "a JSON array",
  "google.protobuf.Value": "a JSON value",
  "google.protobuf.Any": 'a JSON object with "@type"',
};

/** What one value of the field (one item of a list or map) must look like, for violation descriptions. */
export function expectedValue(field: DescField): string {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind === "map" ? field.mapKind : field.fieldKind;
  if (kind === "scalar" && field.scalar !== undefined) return SCALAR_EXPECTED[field.scalar];
  if (kind === "enum" && field.enum !== undefined) {
    const names = field.enum.values.map((v) => v.name);
    const shown = names.length > 12 ? [...names.slice(0, 12), "…"] : names;
    return `one of ${shown.join(", ")} (or its number)`;
  }
  const message = field.message;
  if (message === undefined) return "a value";
  if (isWrapperDesc(message)) return SCALAR_EXPECTED[message.fields[0].scalar];
  return WKT_EXPECTED[message.typeName] ?? "a JSON object";
}

/** What the whole field must look like in JSON. */
export function expectedJson(field: DescField): string {
  if (field.fieldKind === "list") return `a JSON array of values, each ${expectedValue(field)}`;
  if (field.fieldKind === "map") return `a JSON object whose values are each ${expectedValue(field)}`;
  return expectedValue(field);
}

/** A client value quoted for a violation, cut short so a huge value cannot bloat the error. */
export function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

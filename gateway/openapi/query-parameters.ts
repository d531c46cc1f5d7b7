import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import type { HttpBinding } from "../transcoding/bindings.js";
import { isPlainMessage } from "../transcoding/fields.js";
import { enumSchema, oneofNote, scalarSchema, wktSchema } from "./schema.js";
import type { JsonSchema, Parameter } from "./spec-types.js";

/** Well-known types one query value can carry (gateway/transcoding/query.ts `textJson`), besides wrappers. */
const TEXT_WKTS = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration"]);
const FIELD_MASK = "google.protobuf.FieldMask";

/**
 * The query parameters a binding accepts, as gateway/transcoding/query.ts
 * reads them: every request field not set by the path or the body, nested
 * plain messages by dotted lowerCamelCase names (`filter.minSizeBytes`),
 * stopping where a message would recur. A field is listed when a query value
 * can set it: scalars, enums (by name), Timestamp, Duration, FieldMask
 * (comma-separated), wrappers (their scalar), and lists of these except
 * FieldMask, taken as the parameter repeated (`explode: true`). Maps,
 * Struct, Value, Any and lists of messages cannot be, and are not listed.
 * None with `body: "*"`. Proto names (`min_size_bytes`) are also accepted
 * but not listed.
 */
export function queryParameters(binding: HttpBinding): Parameter[] {
  if (binding.body === "*") return [];
  const out: Parameter[] = [];
  const input = binding.method.input;
  walk(binding, input, { proto: [], json: [], seen: new Set([input.typeName]) }, out);
  return out;
}

interface Walk {
  readonly proto: readonly string[];
  readonly json: readonly string[];
  /** Message types on the way here, so a recursive message ends the walk. */
  readonly seen: ReadonlySet<string>;
}

function walk(binding: HttpBinding, message: DescMessage, at: Walk, out: Parameter[]): void {
  for (const f of message.fields) {
    const proto = [...at.proto, f.name];
    const json = [...at.json, f.jsonName];
    if ((at.proto.length === 0 && f === binding.bodyField) || binding.pathFields.has(proto.join("."))) continue;
    const schema = valueSchema(f);
    if (schema !== undefined) {
      out.push(parameterOf(json.join("."), f, schema));
    } else if (f.fieldKind === "message" && isPlainMessage(f.message) && !at.seen.has(f.message.typeName)) {
      walk(binding, f.message, { proto, json, seen: new Set([...at.seen, f.message.typeName]) }, out);
    }
  }
}

function parameterOf(name: string, f: DescField, schema: JsonSchema): Parameter {
  const notes = [schema.description, f.oneof && oneofNote(f.oneof)].filter((n) => n !== undefined);
  const { description: _, ...bare } = schema;
  return {
    name,
    in: "query",
    required: false,
    ...(notes.length > 0 && { description: notes.join(" ") }),
    ...(f.deprecated && { deprecated: true }),
    ...(f.fieldKind === "list" && { style: "form" as const, explode: true }),
    schema: bare,
  };
}

/** The schema of the text a query parameter carries for `f`, or undefined when no query value can set it. */
function valueSchema(f: DescField): JsonSchema | undefined {
  if (f.fieldKind === "list") {
    const item = f.listKind === "scalar" ? scalarSchema(f.scalar)
      : f.listKind === "enum" ? enumSchema(f.enum)
      : f.message.typeName === FIELD_MASK ? undefined : messageText(f.message);
    return item && { type: "array", items: item };
  }
  if (f.fieldKind === "scalar") return scalarSchema(f.scalar);
  if (f.fieldKind === "enum") return enumSchema(f.enum);
  if (f.fieldKind === "message") return f.message.typeName === FIELD_MASK ? wktSchema(f.message) : messageText(f.message);
  return undefined;
}

/** Timestamp, Duration, or a wrapper as its scalar (a query value is never null). */
function messageText(message: DescMessage): JsonSchema | undefined {
  if (!TEXT_WKTS.has(message.typeName) && !isWrapperDesc(message)) return undefined;
  const schema = wktSchema(message);
  if (schema === undefined || !Array.isArray(schema.type)) return schema;
  return { ...schema, type: schema.type.filter((t) => t !== "null")[0] ?? "string" };
}

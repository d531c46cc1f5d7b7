import { ScalarType, type DescEnum, type DescField, type DescMessage, type DescOneof } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import type { JsonSchema } from "./spec-types.js";

/** Where component schemas live; keys are full proto type names (`mesh.auth.v1.User`). */
export const SCHEMA_REF_PREFIX = "#/components/schemas/";

const INT64 = { type: "string", format: "int64", pattern: "^-?[0-9]+$" } as const;
const UINT64 = { type: "string", format: "uint64", pattern: "^[0-9]+$" } as const;
const INT32 = { type: "integer", format: "int32" } as const;
const UINT32 = { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 } as const;

/**
 * proto3 JSON of each scalar (https://protobuf.dev/programming-guides/json/):
 * 64-bit integers are decimal strings, 32-bit ones numbers, bytes standard
 * base64. Non-finite floats ("NaN", "Infinity") are left out on purpose:
 * the services never produce them and they make every number a union.
 */
const SCALARS: Readonly<Record<ScalarType, JsonSchema>> = {
  [ScalarType.DOUBLE]: { type: "number", format: "double" },
  [ScalarType.FLOAT]: { type: "number", format: "float" },
  [ScalarType.INT32]: INT32, [ScalarType.SINT32]: INT32, [ScalarType.SFIXED32]: INT32,
  [ScalarType.UINT32]: UINT32, [ScalarType.FIXED32]: UINT32,
  [ScalarType.INT64]: INT64, [ScalarType.SINT64]: INT64, [ScalarType.SFIXED64]: INT64,
  [ScalarType.UINT64]: UINT64, [ScalarType.FIXED64]: UINT64,
  [ScalarType.BOOL]: { type: "boolean" },
  [ScalarType.STRING]: { type: "string" },
  [ScalarType.BYTES]: { type: "string", format: "byte", contentEncoding: "base64" },
};

/** Well-known types with a JSON form of their own (wrappers are derived in `wktSchema`). */
const WKTS: Readonly<Record<string, JsonSchema>> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time", description: "RFC 3339, e.g. 2026-01-02T15:04:05Z" },
  "google.protobuf.Duration": { type: "string", pattern: "^-?\\d+(\\.\\d+)?s$", description: 'Seconds with an "s" suffix, e.g. "1.5s"' },
  "google.protobuf.FieldMask": { type: "string", description: 'Comma-separated lowerCamelCase field paths, e.g. "name,owner.email"' },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": { description: "Any JSON value" },
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.Any": {
    type: "object", properties: { "@type": { type: "string" } }, required: ["@type"], additionalProperties: true,
    description: 'A message of the type named by "@type" (type.googleapis.com/<full name>), its fields beside it',
  },
};

/** The schema of one scalar kind. */
export function scalarSchema(scalar: ScalarType): JsonSchema {
  return structuredClone(SCALARS[scalar]);
}

/**
 * The inline schema of a well-known type whose JSON is not an object of its
 * fields, or undefined for any other message. Wrappers are their scalar or
 * null (`google.protobuf.Int32Value` → `["integer", "null"]`).
 */
export function wktSchema(message: DescMessage): JsonSchema | undefined {
  if (isWrapperDesc(message)) {
    const s = scalarSchema(message.fields[0].scalar);
    return { ...s, type: [String(s.type), "null"] };
  }
  const wkt = WKTS[message.typeName];
  return wkt && structuredClone(wkt);
}

/** An enum as its value names; `google.protobuf.NullValue` is JSON null. */
export function enumSchema(desc: DescEnum): JsonSchema {
  if (desc.typeName === "google.protobuf.NullValue") return { type: "null" };
  const zero = desc.values.find((v) => v.number === 0);
  return {
    type: "string",
    enum: desc.values.map((v) => v.name),
    ...(zero && { description: `${zero.name} is the default: the value is not set.` }),
  };
}

/** Component schemas collected while mapping, keyed by full type name; `$ref`s point into it. */
export interface SchemaRegistry {
  /** A `$ref` to the message's component (registered with all it reaches), or a well-known type's inline schema. */
  message(desc: DescMessage): JsonSchema;
  /** A `$ref` to the enum's component (NullValue: inline null). */
  enumeration(desc: DescEnum): JsonSchema;
  /** The schema of a field's JSON value, keyed in its message by `jsonName`. */
  field(field: DescField): JsonSchema;
  /** The components so far. */
  readonly schemas: Readonly<Record<string, JsonSchema>>;
}

/**
 * A registry mapping messages to JSON Schema 2020-12 by the proto3 JSON
 * mapping: properties by lowerCamelCase `jsonName`, unknown keys refused
 * (`additionalProperties: false`, as the gateway answers 400; proto names,
 * which parsers also accept, are not listed). Recursive messages are plain
 * `$ref` cycles. A oneof is told in each member's description and enforced
 * with `dependentSchemas` (a member excludes the others).
 */
export function createSchemaRegistry(): SchemaRegistry {
  const schemas: Record<string, JsonSchema> = {};
  const ref = (typeName: string): JsonSchema => ({ $ref: `${SCHEMA_REF_PREFIX}${typeName}` });

  const registry: SchemaRegistry = {
    schemas,
    message(desc) {
      const wkt = wktSchema(desc);
      if (wkt !== undefined) return wkt;
      if (!(desc.typeName in schemas)) {
        schemas[desc.typeName] = {}; // claimed first, so a recursive field finds it
        schemas[desc.typeName] = messageSchema(desc, registry);
      }
      return ref(desc.typeName);
    },
    enumeration(desc) {
      if (desc.typeName === "google.protobuf.NullValue") return enumSchema(desc);
      schemas[desc.typeName] ??= enumSchema(desc);
      return ref(desc.typeName);
    },
    field(field) {
      return annotated(field, valueSchema(field, registry));
    },
  };
  return registry;
}

function messageSchema(desc: DescMessage, registry: SchemaRegistry): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const f of desc.fields) properties[f.jsonName] = registry.field(f);
  const dependent: Record<string, JsonSchema> = {};
  for (const oneof of desc.oneofs) {
    for (const member of oneof.fields) {
      const others = oneof.fields.filter((o) => o !== member).map((o) => ({ required: [o.jsonName] }));
      if (others.length > 0) dependent[member.jsonName] = { not: { anyOf: others } };
    }
  }
  return {
    type: "object",
    properties,
    additionalProperties: false,
    ...(Object.keys(dependent).length > 0 && { dependentSchemas: dependent }),
    ...(desc.deprecated && { deprecated: true }),
  };
}

function valueSchema(field: DescField, registry: SchemaRegistry): JsonSchema {
  switch (field.fieldKind) {
    case "scalar": return scalarSchema(field.scalar);
    case "enum": return registry.enumeration(field.enum);
    case "message": return registry.message(field.message);
    case "list": return { type: "array", items: itemSchema(field, registry) };
    case "map": return { type: "object", propertyNames: mapKeySchema(field.mapKey), additionalProperties: mapValueSchema(field, registry) };
  }
}

function itemSchema(field: DescField & { fieldKind: "list" }, registry: SchemaRegistry): JsonSchema {
  switch (field.listKind) {
    case "scalar": return scalarSchema(field.scalar);
    case "enum": return registry.enumeration(field.enum);
    case "message": return registry.message(field.message);
  }
}

function mapValueSchema(field: DescField & { fieldKind: "map" }, registry: SchemaRegistry): JsonSchema {
  switch (field.mapKind) {
    case "scalar": return scalarSchema(field.scalar);
    case "enum": return registry.enumeration(field.enum);
    case "message": return registry.message(field.message);
  }
}

/** Map keys are JSON object keys: integers as decimal text, bools as "true"/"false". */
function mapKeySchema(key: ScalarType): JsonSchema {
  if (key === ScalarType.BOOL) return { enum: ["true", "false"] };
  if (key === ScalarType.STRING) return { type: "string" };
  const pattern = SCALARS[key].format?.startsWith("uint") ? "^[0-9]+$" : "^-?[0-9]+$";
  return { type: "string", pattern };
}

function annotated(field: DescField, schema: JsonSchema): JsonSchema {
  const out = { ...schema };
  if (field.oneof !== undefined) out.description = joinText(out.description, oneofNote(field.oneof));
  if (field.deprecated) out.deprecated = true;
  return out;
}

/** "Part of oneof `cursor`: set at most one of `afterName`, `beforeName`." */
export function oneofNote(oneof: DescOneof): string {
  return `Part of oneof \`${oneof.name}\`: set at most one of ${oneof.fields.map((f) => `\`${f.jsonName}\``).join(", ")}.`;
}

function joinText(a: string | undefined, b: string): string {
  return a === undefined ? b : `${a}. ${b}`;
}

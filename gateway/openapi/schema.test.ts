import { create, ScalarType, toJson, type DescMessage } from "@bufbuild/protobuf";
import {
  AnySchema, BoolValueSchema, BytesValueSchema, DoubleValueSchema, DurationSchema, EmptySchema, FieldMaskSchema, FloatValueSchema,
  Int32ValueSchema, Int64ValueSchema, ListValueSchema, StringValueSchema, StructSchema, TimestampSchema, UInt32ValueSchema,
  UInt64ValueSchema, ValueSchema,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  ItemSchema, ItemState, SearchItemsRequestSchema, SearchItemsResponseSchema,
} from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { componentValidator } from "./ajv-support.js";
import { createSchemaRegistry, scalarSchema, SCHEMA_REF_PREFIX, wktSchema } from "./schema.js";
import type { JsonSchema } from "./spec-types.js";

const JSON_OPTIONS = { alwaysEmitImplicit: true } as const;

function componentsOf(...messages: DescMessage[]) {
  const registry = createSchemaRegistry();
  for (const m of messages) registry.message(m);
  return registry.schemas;
}

function property(schemas: Readonly<Record<string, JsonSchema>>, message: DescMessage, key: string): JsonSchema {
  const p = schemas[message.typeName]?.properties?.[key];
  if (p === undefined) throw new Error(`${message.typeName} has no property ${key}`);
  return p;
}

describe("scalarSchema: the proto3 JSON form of every scalar kind", () => {
  const int64 = { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
  const uint64 = { type: "string", format: "uint64", pattern: "^[0-9]+$" };
  const int32 = { type: "integer", format: "int32" };
  const uint32 = { type: "integer", format: "uint32", minimum: 0, maximum: 4294967295 };
  it.each<[string, ScalarType, JsonSchema]>([
    ["double", ScalarType.DOUBLE, { type: "number", format: "double" }],
    ["float", ScalarType.FLOAT, { type: "number", format: "float" }],
    ["int32", ScalarType.INT32, int32],
    ["sint32", ScalarType.SINT32, int32],
    ["sfixed32", ScalarType.SFIXED32, int32],
    ["uint32", ScalarType.UINT32, uint32],
    ["fixed32", ScalarType.FIXED32, uint32],
    ["int64", ScalarType.INT64, int64],
    ["sint64", ScalarType.SINT64, int64],
    ["sfixed64", ScalarType.SFIXED64, int64],
    ["uint64", ScalarType.UINT64, uint64],
    ["fixed64", ScalarType.FIXED64, uint64],
    ["bool", ScalarType.BOOL, { type: "boolean" }],
    ["string", ScalarType.STRING, { type: "string" }],
    ["bytes", ScalarType.BYTES, { type: "string", format: "byte", contentEncoding: "base64" }],
  ])("maps %s", (_, scalar, expected) => {
    expect(scalarSchema(scalar)).toEqual(expected);
  });
});

describe("wktSchema: well-known types with a JSON form of their own", () => {
  it.each<[DescMessage, JsonSchema]>([
    [TimestampSchema, { type: "string", format: "date-time" }],
    [DurationSchema, { type: "string", pattern: "^-?\\d+(\\.\\d+)?s$" }],
    [FieldMaskSchema, { type: "string" }],
    [StructSchema, { type: "object", additionalProperties: true }],
    [ValueSchema, {}],
    [ListValueSchema, { type: "array", items: {} }],
    [AnySchema, { type: "object", properties: { "@type": { type: "string" } }, required: ["@type"], additionalProperties: true }],
    [DoubleValueSchema, { type: ["number", "null"], format: "double" }],
    [FloatValueSchema, { type: ["number", "null"], format: "float" }],
    [Int64ValueSchema, { type: ["string", "null"], format: "int64", pattern: "^-?[0-9]+$" }],
    [UInt64ValueSchema, { type: ["string", "null"], format: "uint64", pattern: "^[0-9]+$" }],
    [Int32ValueSchema, { type: ["integer", "null"], format: "int32" }],
    [UInt32ValueSchema, { type: ["integer", "null"], format: "uint32", minimum: 0, maximum: 4294967295 }],
    [BoolValueSchema, { type: ["boolean", "null"] }],
    [StringValueSchema, { type: ["string", "null"] }],
    [BytesValueSchema, { type: ["string", "null"], format: "byte", contentEncoding: "base64" }],
  ])("maps %s", (desc, expected) => {
    const { description: _, ...schema } = wktSchema(desc) ?? { type: "missing" };
    expect(schema).toEqual(expected);
  });

  it("leaves plain messages, Empty included, to components", () => {
    expect(wktSchema(EmptySchema)).toBeUndefined();
    expect(wktSchema(ItemSchema)).toBeUndefined();
    expect(componentsOf(EmptySchema)["google.protobuf.Empty"]).toEqual({ type: "object", properties: {}, additionalProperties: false });
  });
});

describe("createSchemaRegistry: messages as components", () => {
  const schemas = componentsOf(SearchItemsRequestSchema, SearchItemsResponseSchema);

  it("keys components by full type name and refers to them by $ref", () => {
    expect(Object.keys(schemas).sort()).toEqual([
      "mesh.testing.v1.Item", "mesh.testing.v1.ItemFilter", "mesh.testing.v1.ItemState", "mesh.testing.v1.Owner",
      "mesh.testing.v1.SearchItemsRequest", "mesh.testing.v1.SearchItemsResponse",
    ]);
    expect(property(schemas, SearchItemsResponseSchema, "items")).toEqual({ type: "array", items: { $ref: `${SCHEMA_REF_PREFIX}mesh.testing.v1.Item` } });
  });

  it("names properties by lowerCamelCase JSON name and refuses other keys", () => {
    const item = schemas["mesh.testing.v1.Item"];
    expect(Object.keys(item?.properties ?? {})).toEqual([
      "name", "title", "state", "sizeBytes", "tags", "owner", "createTime", "labels", "priority", "attributes", "note",
    ]);
    expect(item?.additionalProperties).toBe(false);
  });

  it("maps enums to string components of their names, the zero value documented", () => {
    expect(property(schemas, ItemSchema, "state")).toEqual({ $ref: `${SCHEMA_REF_PREFIX}mesh.testing.v1.ItemState` });
    expect(schemas["mesh.testing.v1.ItemState"]).toEqual({
      type: "string",
      enum: ["ITEM_STATE_UNSPECIFIED", "ITEM_STATE_DRAFT", "ITEM_STATE_ACTIVE", "ITEM_STATE_ARCHIVED"],
      description: "ITEM_STATE_UNSPECIFIED is the default: the value is not set.",
    });
  });

  it.each<[string, DescMessage, string, JsonSchema]>([
    ["repeated scalar", SearchItemsRequestSchema, "ids", { type: "array", items: { type: "integer", format: "int32" } }],
    ["repeated WKT", SearchItemsRequestSchema, "at", { type: "array", items: { type: "string", format: "date-time", description: "RFC 3339, e.g. 2026-01-02T15:04:05Z" } }],
    ["map<string,string>", ItemSchema, "labels", { type: "object", propertyNames: { type: "string" }, additionalProperties: { type: "string" } }],
    ["wrapper", ItemSchema, "priority", { type: ["integer", "null"], format: "int32" }],
    ["Struct", ItemSchema, "attributes", { type: "object", additionalProperties: true }],
    ["nested message", ItemSchema, "owner", { $ref: `${SCHEMA_REF_PREFIX}mesh.testing.v1.Owner` }],
    ["proto3 optional", ItemSchema, "note", { type: "string" }],
  ])("maps a %s field", (_, message, key, expected) => {
    expect(property(schemas, message, key)).toEqual(expected);
  });

  it("documents a oneof on its members and lets at most one be set", () => {
    expect(property(schemas, SearchItemsRequestSchema, "afterName").description)
      .toBe("Part of oneof `cursor`: set at most one of `afterName`, `beforeName`.");
    expect(schemas["mesh.testing.v1.SearchItemsRequest"]?.dependentSchemas).toEqual({
      afterName: { not: { anyOf: [{ required: ["beforeName"] }] } },
      beforeName: { not: { anyOf: [{ required: ["afterName"] }] } },
    });
  });

  it("maps a recursive message to a $ref cycle", () => {
    const v = componentsOf(ValueSchema, StructSchema); // WKTs: inline, nothing registered
    expect(v).toEqual({});
    const registry = createSchemaRegistry();
    expect(registry.message(ItemSchema)).toEqual({ $ref: `${SCHEMA_REF_PREFIX}mesh.testing.v1.Item` });
    expect(registry.message(ItemSchema)).toEqual({ $ref: `${SCHEMA_REF_PREFIX}mesh.testing.v1.Item` });
    expect(Object.keys(registry.schemas)).toHaveLength(3); // Item, ItemState, Owner: each once
  });
});

describe("component schemas accept what the gateway renders and refuse what it refuses", () => {
  const schemas = componentsOf(SearchItemsRequestSchema, SearchItemsResponseSchema, EmptySchema);
  const v = componentValidator(schemas);
  const item = create(ItemSchema, {
    name: "projects/p/items/i", state: ItemState.ACTIVE, sizeBytes: 9007199254740993n, tags: ["a"],
    owner: { displayName: "Ann", email: "a@x" }, createTime: create(TimestampSchema, { seconds: 1n, nanos: 5 }),
    labels: { env: "prod" }, priority: 3, attributes: { n: 1, s: "x", l: [true, null] }, note: "n",
  });
  const request = create(SearchItemsRequestSchema, {
    query: "q", tags: ["a"], ids: [1, -2], state: ItemState.DRAFT, minSizeBytes: -5n, maxSizeBytes: 18446744073709551615n,
    includeArchived: true, minScore: 1.5, boost: 2, pageToken: new Uint8Array([251, 255]), pageSize: 4294967295, offset: -3,
    seed: 7n, maxAge: create(DurationSchema, { seconds: -1n, nanos: -500_000_000 }), readMask: create(FieldMaskSchema, { paths: ["owner.display_name"] }),
    limit: 0, ownerEmail: "", archived: false, minViews: 0n, minRating: 0, filter: { states: [ItemState.ACTIVE] }, version: 0,
    labels: { k: "v" }, attributes: {}, at: [create(TimestampSchema)], cursor: { case: "afterName", value: "x" },
  });

  it.each<[string, DescMessage, unknown]>([
    ["an Item with every kind of field", ItemSchema, toJson(ItemSchema, item, JSON_OPTIONS)],
    ["an empty Item with defaults emitted", ItemSchema, toJson(ItemSchema, create(ItemSchema), JSON_OPTIONS)],
    ["a SearchItemsRequest with every scalar and WKT", SearchItemsRequestSchema, toJson(SearchItemsRequestSchema, request, JSON_OPTIONS)],
    ["a SearchItemsResponse", SearchItemsResponseSchema, toJson(SearchItemsResponseSchema, create(SearchItemsResponseSchema, { items: [item], total: 1n }), JSON_OPTIONS)],
    ["Empty", EmptySchema, {}],
  ])("accepts %s", (_, message, json) => {
    expect(v.errors(message.typeName, json)).toEqual([]);
  });

  it.each<[string, unknown]>([
    ["an int64 as a JSON number", { sizeBytes: 5 }],
    ["an enum by number", { state: 2 }],
    ["an unknown enum name", { state: "ACTIVE" }],
    ["a proto field name", { size_bytes: "5" }],
    ["an unknown field", { colour: "red" }],
    ["a timestamp that is not RFC 3339", { createTime: "yesterday" }],
    ["a list for a scalar", { title: ["a"] }],
    ["a number as a map value", { labels: { k: 1 } }],
    ["a string wrapper value for an Int32Value", { priority: "3" }],
  ])("refuses an Item with %s", (_, json) => {
    expect(v.errors(ItemSchema.typeName, json)).not.toEqual([]);
  });

  it.each<[string, unknown]>([
    ["two members of a oneof", { afterName: "a", beforeName: "b" }],
    ["a duration without its s", { maxAge: "1.5" }],
    ["a negative uint64", { maxSizeBytes: "-1" }],
    ["a uint32 past 2^32-1", { pageSize: 4294967296 }],
    ["an int32 with a fraction", { offset: 1.5 }],
    ["bytes that are not base64", { pageToken: "not base64!" }],
  ])("refuses a SearchItemsRequest with %s", (_, json) => {
    expect(v.errors(SearchItemsRequestSchema.typeName, json)).not.toEqual([]);
  });

  it("takes null for a wrapper field", () => {
    expect(v.errors(ItemSchema.typeName, { priority: null })).toEqual([]);
  });
});

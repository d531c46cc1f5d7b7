import { describe, expect, it } from "vitest";
import { TranscodingService } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { bindingFor, build, fieldsOf } from "../transcoding/test-support.js";
import { queryParameters } from "./query-parameters.js";
import type { JsonSchema, Parameter } from "./spec-types.js";

const search = bindingFor(TranscodingService, "SearchItems", "GET");
const byName = (params: readonly Parameter[]) => new Map(params.map((p) => [p.name, p]));

const int32 = { type: "integer", format: "int32" };
const int64 = { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
const itemState = { type: "string", enum: ["ITEM_STATE_UNSPECIFIED", "ITEM_STATE_DRAFT", "ITEM_STATE_ACTIVE", "ITEM_STATE_ARCHIVED"] };
const dateTime = { type: "string", format: "date-time" };

describe("queryParameters", () => {
  const params = byName(queryParameters(search));

  it.each<[string, JsonSchema, boolean]>([
    ["query", { type: "string" }, false],
    ["tags", { type: "array", items: { type: "string" } }, true],
    ["ids", { type: "array", items: int32 }, true],
    ["state", itemState, false],
    ["minSizeBytes", int64, false],
    ["maxSizeBytes", { type: "string", format: "uint64", pattern: "^[0-9]+$" }, false],
    ["includeArchived", { type: "boolean" }, false],
    ["pageToken", { type: "string", format: "byte", contentEncoding: "base64" }, false],
    ["createdAfter", dateTime, false],
    ["maxAge", { type: "string", pattern: "^-?\\d+(\\.\\d+)?s$" }, false],
    ["readMask", { type: "string" }, false],
    ["limit", int32, false],
    ["ownerEmail", { type: "string" }, false],
    ["archived", { type: "boolean" }, false],
    ["minViews", int64, false],
    ["version", int32, false],
    ["at", { type: "array", items: { ...dateTime, description: "RFC 3339, e.g. 2026-01-02T15:04:05Z" } }, true],
    ["filter.state", itemState, false],
    ["filter.states", { type: "array", items: { ...itemState, description: "ITEM_STATE_UNSPECIFIED is the default: the value is not set." } }, true],
    ["filter.minSizeBytes", int64, false],
    ["filter.createdAfter", dateTime, false],
    ["filter.owner.displayName", { type: "string" }, false],
  ])("documents %s", (name, schema, repeated) => {
    const p = params.get(name);
    expect(p?.in).toBe("query");
    expect(p?.required).toBe(false);
    expect(p?.schema).toEqual(schema);
    expect(p?.explode).toBe(repeated ? true : undefined);
    expect(p?.style).toBe(repeated ? "form" : undefined);
  });

  it("leaves out what a query value cannot set: maps, Struct, path variables", () => {
    expect([...params.keys()]).not.toContain("labels");
    expect([...params.keys()]).not.toContain("attributes");
    const scoped = byName(queryParameters(bindingFor(TranscodingService, "SearchItems", "GET", 1)));
    expect(scoped.has("parent")).toBe(false);
    expect(scoped.has("query")).toBe(true);
  });

  it("documents the oneof rivalry on each member", () => {
    expect(params.get("afterName")?.description).toBe("Part of oneof `cursor`: set at most one of `afterName`, `beforeName`.");
    expect(params.get("beforeName")?.description).toContain("oneof `cursor`");
  });

  it("lists nothing when the body carries the whole request", () => {
    expect(queryParameters(bindingFor(TranscodingService, "CreateItem", "POST", 1))).toEqual([]);
    expect(queryParameters(bindingFor(ProjectService, "CreateProject"))).toEqual([]);
  });

  it("leaves out the body field and path variables, nested ones included", () => {
    expect([...byName(queryParameters(bindingFor(TranscodingService, "CreateItem", "POST", 0))).keys()]).toEqual(["itemId", "validateOnly"]);
    expect([...byName(queryParameters(bindingFor(TranscodingService, "UpdateItem"))).keys()]).toEqual(["updateMask", "allowMissing"]);
    expect([...byName(queryParameters(bindingFor(ProjectService, "UpdateProject"))).keys()]).toEqual(["updateMask"]);
    expect([...byName(queryParameters(bindingFor(ProjectService, "ListProjects"))).keys()]).toEqual(["page", "limit", "sort", "order"]);
  });
});

/** A value of the documented type, as query text. */
function sample(schema: JsonSchema): string {
  if (schema.enum !== undefined) return String(schema.enum[1]);
  if (schema.format === "date-time") return "2026-01-02T03:04:05Z";
  if (schema.format === "byte") return "AQID";
  if (schema.pattern?.endsWith("s$")) return "1.5s";
  if (schema.format?.includes("64") && schema.type === "string") return "9007199254740993";
  switch (schema.type) {
    case "integer": return "7";
    case "number": return "1.5";
    case "boolean": return "true";
    default: return "x";
  }
}

describe("the documented query parameters agree with the transcoder", () => {
  it("accepts every documented parameter with a value of its documented type", () => {
    const query = new URLSearchParams();
    for (const p of queryParameters(search)) {
      if (p.name === "beforeName") continue; // a rival of afterName in oneof `cursor`
      const item = p.schema.type === "array" ? p.schema.items ?? {} : p.schema;
      query.append(p.name, sample(item));
      if (p.schema.type === "array") query.append(p.name, sample(item));
    }
    expect(() => build(search, { query: query.toString() })).not.toThrow();
  });

  it("refuses the request fields left undocumented", () => {
    expect(fieldsOf(search, { query: "labels=a&attributes=b" })).toEqual(["labels", "attributes"]);
  });
});

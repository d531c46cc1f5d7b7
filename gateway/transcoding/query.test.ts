import { create } from "@bufbuild/protobuf";
import { DurationSchema, FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ItemState, TranscodingService, type SearchItemsRequest } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { bindingFor, build, fieldsOf, timestamp as ts, violations } from "./test-support.js";

const search = bindingFor(TranscodingService, "SearchItems", "GET");
const searchVerb = bindingFor(TranscodingService, "SearchItems", "SEARCH");

describe("buildRequest: query parameters of every kind (applyQuery)", () => {
  it.each([
    ["query=hello+world%21", { query: "hello world!" }],
    ["tags=a&tags=b", { tags: ["a", "b"] }],
    ["tags=a,b", { tags: ["a,b"] }],
    ["ids=1&ids=-2", { ids: [1, -2] }],
    ["state=ITEM_STATE_ACTIVE", { state: ItemState.ACTIVE }],
    ["state=2", { state: ItemState.ACTIVE }],
    ["minSizeBytes=9007199254740993", { minSizeBytes: 9007199254740993n }],
    ["min_size_bytes=-5", { minSizeBytes: -5n }],
    ["maxSizeBytes=18446744073709551615", { maxSizeBytes: 18446744073709551615n }],
    ["includeArchived=true", { includeArchived: true }],
    ["include_archived=false", { includeArchived: false }],
    ["minScore=1.5&boost=2", { minScore: 1.5, boost: 2 }],
    ["minScore=-Infinity", { minScore: -Infinity }],
    ["pageToken=AQID", { pageToken: new Uint8Array([1, 2, 3]) }],
    ["pageToken=-_8", { pageToken: new Uint8Array([251, 255]) }],
    ["pageSize=10&offset=-5&seed=42", { pageSize: 10, offset: -5, seed: 42n }],
    ["createdAfter=2026-01-02T03:04:05.5Z", { createdAfter: ts(1767323045n, 500_000_000) }],
    ["maxAge=1.5s", { maxAge: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }) }],
    ["readMask=title,owner.displayName", { readMask: create(FieldMaskSchema, { paths: ["title", "owner.display_name"] }) }],
    ["read_mask=owner.display_name&read_mask=tags", { readMask: create(FieldMaskSchema, { paths: ["owner.display_name", "tags"] }) }],
    ["readMask=", { readMask: create(FieldMaskSchema, { paths: [] }) }],
    ["limit=5&ownerEmail=a%40b.c&archived=false&minViews=10&minRating=4.5", { limit: 5, ownerEmail: "a@b.c", archived: false, minViews: 10n, minRating: 4.5 }],
    ["ownerEmail=", { ownerEmail: "" }],
    ["version=0", { version: 0 }],
    ["at=2026-01-01T00:00:00Z&at=1970-01-01T00:00:01Z", { at: [ts(1767225600n), ts(1n)] }],
    ["afterName=x", { cursor: { case: "afterName", value: "x" } }],
  ])("?%s", (query, expected) => {
    expect(build<SearchItemsRequest>(search, { query })).toMatchObject(expected);
  });

  it("fills nested message fields by dotted names, JSON or proto", () => {
    const msg = build<SearchItemsRequest>(search, {
      query: "filter.state=ITEM_STATE_DRAFT&filter.min_size_bytes=5&filter.states=1&filter.states=ITEM_STATE_ACTIVE"
        + "&filter.createdAfter=2026-01-01T00:00:00Z&filter.owner.displayName=Ann&filter.owner.email=a%40b.c",
    });
    expect(msg.filter).toMatchObject({
      state: ItemState.DRAFT,
      minSizeBytes: 5n,
      states: [ItemState.DRAFT, ItemState.ACTIVE],
      createdAfter: ts(1767225600n),
      owner: { displayName: "Ann", email: "a@b.c" },
    });
  });

  it("leaves wrappers and optional fields unset when not given", () => {
    const msg = build<SearchItemsRequest>(search, { query: "" });
    expect([msg.limit, msg.archived, msg.version, msg.filter, msg.createdAfter]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it.each([
    ["ids=1&ids=x", "ids", 'expected a 32-bit integer, got ["1","x"]'],
    ["state=active", "state", "expected one of ITEM_STATE_UNSPECIFIED, ITEM_STATE_DRAFT, ITEM_STATE_ACTIVE, ITEM_STATE_ARCHIVED (or its number)"],
    ["state=1.5", "state", "expected one of"],
    ["minSizeBytes=1.5", "minSizeBytes", 'expected a 64-bit integer (as a string, e.g. "123"), got "1.5"'],
    ["minSizeBytes=9223372036854775808", "minSizeBytes", "expected a 64-bit integer"],
    ["maxSizeBytes=-1", "maxSizeBytes", "expected an unsigned 64-bit integer"],
    ["includeArchived=1", "includeArchived", 'expected true or false, got "1"'],
    ["includeArchived=TRUE", "includeArchived", "expected true or false"],
    ["pageSize=", "pageSize", 'expected an unsigned 32-bit integer, got ""'],
    ["pageSize=4294967296", "pageSize", "expected an unsigned 32-bit integer"],
    ["minScore=abc", "minScore", 'expected a number, got "abc"'],
    ["pageToken=%%%", "pageToken", "expected base64-encoded bytes"],
    ["createdAfter=2026-13-01T00:00:00Z", "createdAfter", "expected an RFC 3339 timestamp"],
    ["maxAge=90", "maxAge", 'expected a duration in seconds such as "1.5s", got "90"'],
    ["limit=ten", "limit", 'expected a 32-bit integer, got "ten"'],
    ["archived=no", "archived", "expected true or false"],
    ["filter.states=NOPE", "filter.states", "expected one of"],
    ["pageSize=1&pageSize=2", "pageSize", "is given more than once but takes one value"],
    ["pageSize=1&page_size=2", "pageSize", "is given more than once but takes one value"],
    ["filter=x", "filter", "cannot be set from a query parameter"],
    ["labels=x", "labels", "cannot be set from a query parameter"],
    ["attributes=x", "attributes", "cannot be set from a query parameter"],
    ["filter.nope=x", "filter.nope", "unknown query parameter"],
    ["filter.owner.nope=x", "filter.owner.nope", "unknown query parameter"],
    ["createdAfter.seconds=5", "createdAfter.seconds", "unknown query parameter"],
    ["labels.a=b", "labels.a", "unknown query parameter"],
    ["Query=x", "Query", "unknown query parameter"],
    ["=x", "", "unknown query parameter"],
    ["afterName=x&beforeName=y", "beforeName", 'only one of the "cursor" fields may be set'],
    ["afterName=x&after_name=y", "afterName", "is given more than once but takes one value"],
  ])("?%s → 400 naming %s", (query, field, description) => {
    const found = violations(search, { query });
    expect(found).toHaveLength(1);
    expect(found[0]?.field).toBe(field);
    expect(found[0]?.description).toContain(description);
  });

  it("names every bad parameter at once, in the order sent", () => {
    expect(fieldsOf(search, { query: "nope=1&ids=x&state=BAD&includeArchived=maybe&tags=ok" })).toEqual([
      "nope",
      "ids",
      "state",
      "includeArchived",
    ]);
  });

  it("serves the custom-kind binding the same way", () => {
    expect(build(searchVerb, { query: "tags=a&state=ITEM_STATE_DRAFT" })).toMatchObject({ tags: ["a"], state: ItemState.DRAFT });
  });

  it("sets the parent variable of the project-scoped search binding", () => {
    const scoped = bindingFor(TranscodingService, "SearchItems", "GET", 1);
    expect(build(scoped, { vars: { parent: "projects/p" }, query: "query=x" })).toMatchObject({ parent: "projects/p", query: "x" });
  });
});

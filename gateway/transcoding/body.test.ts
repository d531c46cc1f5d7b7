import { describe, expect, it } from "vitest";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { ItemState, TranscodingService, type CreateItemRequest } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { MAX_VIOLATIONS } from "./body.js";
import { bindingFor, build, ruleBinding, timestamp as ts, violations } from "./test-support.js";

const createProject = bindingFor(ProjectService, "CreateProject");
const createItem = bindingFor(TranscodingService, "CreateItem");
const createItemWhole = bindingFor(TranscodingService, "CreateItem", "POST", 1);

describe("buildRequest: JSON bodies (applyBody)", () => {
  const item = {
    title: "T",
    state: "ITEM_STATE_DRAFT",
    sizeBytes: "12",
    tags: ["a", "b"],
    owner: { displayName: "Ann" },
    createTime: "2026-01-01T00:00:00Z",
    labels: { env: "prod" },
    priority: 3,
    attributes: { color: "red", n: 1 },
    note: "",
  };

  it("fills a body field of every kind and the rest from the query", () => {
    const msg = build<CreateItemRequest>(createItem, {
      vars: { parent: "projects/p" },
      body: item,
      query: "itemId=i1&validateOnly=true",
    });
    expect(msg).toMatchObject({ parent: "projects/p", itemId: "i1", validateOnly: true });
    expect(msg.item).toMatchObject({
      title: "T",
      state: ItemState.DRAFT,
      sizeBytes: 12n,
      tags: ["a", "b"],
      owner: { displayName: "Ann" },
      createTime: ts(1767225600n),
      labels: { env: "prod" },
      priority: 3,
      note: "",
    });
    expect(msg.item?.attributes).toEqual({ color: "red", n: 1 });
  });

  it("accepts proto field names in the body", () => {
    const msg = build<CreateItemRequest>(createItem, { vars: { parent: "projects/p" }, body: { size_bytes: 5, create_time: "1970-01-01T00:00:00Z" } });
    expect(msg.item).toMatchObject({ sizeBytes: 5n, createTime: ts(0n) });
  });

  it("fills the whole request from the body on the additional binding", () => {
    expect(build<CreateItemRequest>(createItemWhole, { body: { parent: "projects/p", item: { title: "T" }, itemId: "i" } })).toMatchObject({
      parent: "projects/p",
      itemId: "i",
      item: { title: "T" },
    });
  });

  it("treats a missing body as an empty message when the body is the whole request", () => {
    expect(build(createItemWhole, {})).toMatchObject({ parent: "", itemId: "" });
  });

  it("leaves the body field unset when the client sends no body", () => {
    expect(build<CreateItemRequest>(createItem, { vars: { parent: "projects/p" } }).item).toBeUndefined();
  });

  it("names every problem of a nested body, with JSON paths as the client wrote them", () => {
    const body = {
      owner: { nope: 1, displayName: 5 },
      tags: ["a", 5, null],
      labels: { env: 5 },
      sizeBytes: "x",
      createTime: "yesterday",
      state: "NOPE",
      priority: "high",
      bogus: true,
    };
    expect(violations(createItem, { vars: { parent: "projects/p" }, body })).toEqual([
      { field: "owner.nope", description: "unknown field" },
      { field: "owner.displayName", description: "expected a string, got 5" },
      { field: "tags[1]", description: "expected a string, got 5" },
      { field: "tags[2]", description: "must not be null" },
      { field: 'labels["env"]', description: "expected a string, got 5" },
      { field: "sizeBytes", description: 'expected a 64-bit integer (as a string, e.g. "123"), got "x"' },
      { field: "createTime", description: 'expected an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, got "yesterday"' },
      { field: "state", description: expect.stringContaining('expected one of ITEM_STATE_UNSPECIFIED') },
      { field: "priority", description: 'expected a 32-bit integer, got "high"' },
      { field: "bogus", description: "unknown field" },
    ]);
  });

  it.each([
    ["an array for the whole request", createItemWhole, [1, 2], "body", "expected a JSON object, got [1,2]"],
    ["null for the whole request", createItemWhole, null, "body", "expected a JSON object, got null"],
    ["a string for the whole request", createItemWhole, "x", "body", 'expected a JSON object, got "x"'],
    ["a string for a message body field", createItem, "x", "body", 'expected a JSON object, got "x"'],
    ["a string for a message", createItem, { owner: "Ann" }, "owner", 'expected a JSON object, got "Ann"'],
    ["a string for a list", createItem, { tags: "a" }, "tags", 'expected a JSON array of values, each a string, got "a"'],
    ["an array for a map", createItem, { labels: ["a"] }, "labels", 'expected a JSON object whose values are each a string, got ["a"]'],
    ["one field under both names", createItem, { sizeBytes: "1", size_bytes: "2" }, "size_bytes", 'sets the same field as "sizeBytes"'],
  ])("refuses %s", (_, binding, body, field, description) => {
    const vars: Record<string, string> = binding === createItem ? { parent: "projects/p" } : {};
    expect(violations(binding, { vars, body })).toEqual([{ field, description }]);
  });

  it("refuses two members of one oneof in the body", () => {
    const whole = ruleBinding("SearchItems", { post: "/v1/items:find", body: "*" });
    expect(violations(whole, { body: { afterName: "a", beforeName: "b" } })).toEqual([
      { field: "beforeName", description: 'only one of the "cursor" fields may be set, and "afterName" is' },
    ]);
  });

  it(`reports at most ${MAX_VIOLATIONS} problems`, () => {
    const body = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`unknown${i}`, i]));
    expect(violations(createProject, { body })).toHaveLength(MAX_VIOLATIONS);
  });

  it("accepts null for a field as its default", () => {
    expect(build(createProject, { body: { name: null, description: "d" } })).toMatchObject({ name: "", description: "d" });
  });
});

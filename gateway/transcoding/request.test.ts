import { describe, expect, it } from "vitest";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { LoggingService, type IngestLogRequest, type TailLogsRequest } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService, type UpdateProjectRequest } from "../../gen/mesh/project/v1/project_pb.js";
import { ItemState, TranscodingService, type UpdateItemRequest } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { updateMaskPaths } from "./request.js";
import { bindingFor, build, fieldsOf, ruleBinding, timestamp as ts, violations } from "./test-support.js";

const getProject = bindingFor(ProjectService, "GetProject");
const listProjects = bindingFor(ProjectService, "ListProjects");
const createProject = bindingFor(ProjectService, "CreateProject");
const replaceProject = bindingFor(ProjectService, "ReplaceProject");
const updateProject = bindingFor(ProjectService, "UpdateProject");
const ingestLog = bindingFor(LoggingService, "IngestLog");
const tailLogs = bindingFor(LoggingService, "TailLogs");
const getAlertRule = bindingFor(AnalyticsService, "GetAlertRule");
const listAlertEvents = bindingFor(AnalyticsService, "ListAlertEvents");
const updateItem = bindingFor(TranscodingService, "UpdateItem");
const deleteItem = bindingFor(TranscodingService, "DeleteItem");
const getFile = bindingFor(TranscodingService, "GetFile");

describe("buildRequest: the mesh's routes", () => {
  it("sets GET /api/v1/projects/{id} from the path", () => {
    expect(build(getProject, { vars: { id: "p1" } })).toMatchObject({ $typeName: "mesh.project.v1.GetProjectRequest", id: "p1" });
  });

  it("sets GET /api/v1/alerts/rules/{id} from the path", () => {
    expect(build(getAlertRule, { vars: { id: "r 1/2" } })).toMatchObject({ id: "r 1/2" });
  });

  it("fills GET /api/v1/projects from query parameters", () => {
    expect(build(listProjects, { query: "page=2&limit=20&sort=createdAt&order=desc" })).toMatchObject({
      page: 2,
      limit: 20,
      sort: "createdAt",
      order: "desc",
    });
  });

  it("names each unknown query parameter", () => {
    expect(violations(listProjects, { query: "page=1&foo=1&bar=2&foo=3" })).toEqual([
      { field: "foo", description: "unknown query parameter" },
      { field: "bar", description: "unknown query parameter" },
    ]);
  });

  it("names an invalid number and says what it expects", () => {
    expect(violations(listProjects, { query: "page=abc" })).toEqual([
      { field: "page", description: 'expected a 32-bit integer, got "abc"' },
    ]);
  });

  it("fills an optional bool and a string from the query of GET /api/v1/alerts/events", () => {
    expect(build(listAlertEvents, { query: "severity=critical&acknowledged=false&limit=10&offset=0" })).toMatchObject({
      severity: "critical",
      acknowledged: false,
      limit: 10,
    });
  });

  it("fills Timestamps and filters of GET /api/v1/logs:tail from the query", () => {
    const msg = build<TailLogsRequest>(tailLogs, {
      query: "from=2026-11-22T10:00:00Z&to=2026-11-22T11:00:00.250%2B01:00&statusCode=500&method=GET&project_id=p1",
    });
    expect(msg).toMatchObject({ statusCode: 500, method: "GET", projectId: "p1" });
    expect(msg.from).toEqual(ts(1795341600n));
    expect(msg.to).toEqual(ts(1795341600n, 250_000_000));
  });

  it("names a bad timestamp and says what it expects", () => {
    expect(violations(tailLogs, { query: "from=yesterday" })).toEqual([
      { field: "from", description: 'expected an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, got "yesterday"' },
    ]);
  });

  it("fills POST /api/v1/projects from the whole body", () => {
    expect(build(createProject, { body: { name: "Shop", description: "web shop" } })).toMatchObject({
      name: "Shop",
      description: "web shop",
    });
  });

  it("refuses query parameters when the body is the whole request", () => {
    expect(fieldsOf(createProject, { body: { name: "Shop" }, query: "name=Other&x=1" })).toEqual(["name", "x"]);
  });

  it("names every unknown JSON field of the body", () => {
    expect(violations(createProject, { body: { name: "Shop", nmae: "x", extra: { a: 1 } } })).toEqual([
      { field: "nmae", description: "unknown field" },
      { field: "extra", description: "unknown field" },
    ]);
  });

  it("fills POST /api/v1/logs from the body field \"log\"", () => {
    const body = { requestId: "r1", method: "GET", path: "/x", statusCode: 200, latency: 1.5, ip: "10.0.0.1" };
    const msg = build<IngestLogRequest>(ingestLog, { body });
    expect(msg.log).toMatchObject(body);
  });

  it("names invalid and unknown fields of a body field relative to the body", () => {
    expect(violations(ingestLog, { body: { requestId: "r1", statusCode: "abc", foo: 1 } })).toEqual([
      { field: "statusCode", description: 'expected a 32-bit integer, got "abc"' },
      { field: "foo", description: "unknown field" },
    ]);
  });

  it("refuses a query parameter naming a field of the body", () => {
    expect(violations(ingestLog, { body: {}, query: "log.method=GET" })).toEqual([
      { field: "log.method", description: "is part of the request body, not a query parameter" },
    ]);
  });

  it("refuses a body on a route without one", () => {
    expect(violations(getProject, { vars: { id: "p1" }, body: { id: "p2" } })).toEqual([
      { field: "body", description: "this route takes no request body" },
    ]);
  });

  it("refuses a query parameter naming a path variable", () => {
    expect(violations(getProject, { vars: { id: "p1" }, query: "id=p2" })).toEqual([
      { field: "id", description: "is set by the URL path" },
    ]);
  });
});

describe("buildRequest: path variables and the body", () => {
  it("sets PUT /api/v1/projects/{id} from the path and the body", () => {
    expect(build(replaceProject, { vars: { id: "p1" }, body: { name: "n" } })).toMatchObject({ id: "p1", name: "n" });
  });

  it("accepts a body repeating the path's value", () => {
    expect(build(replaceProject, { vars: { id: "p1" }, body: { id: "p1", name: "n" } })).toMatchObject({ id: "p1" });
  });

  it("refuses a body setting a path variable to another value", () => {
    expect(violations(replaceProject, { vars: { id: "p1" }, body: { id: "p2", name: "n" } })).toEqual([
      { field: "id", description: "is set by both the URL path and the body, to different values" },
    ]);
  });

  it("refuses a body field repeating a nested path variable with another value", () => {
    expect(violations(updateItem, { vars: { "item.name": "projects/p/items/i" }, body: { name: "projects/p/items/j" } })).toEqual([
      { field: "item.name", description: "is set by both the URL path and the body, to different values" },
    ]);
  });

  it("merges a nested path variable into the body field", () => {
    const msg = build<UpdateItemRequest>(updateItem, { vars: { "item.name": "projects/p/items/i" }, body: { title: "T" } });
    expect(msg.item).toMatchObject({ name: "projects/p/items/i", title: "T" });
  });

  it("sets a resource-name variable, a ** variable and a query parameter", () => {
    expect(build(deleteItem, { vars: { name: "projects/p/items/i" }, query: "etag=e1" })).toMatchObject({
      name: "projects/p/items/i",
      etag: "e1",
    });
    expect(build(getFile, { vars: { path: "a/b c/d.txt" } })).toMatchObject({ path: "a/b c/d.txt" });
  });

  const typedSearch = ruleBinding("SearchItems", { get: "/v1/items/{page_size}/{state}/{include_archived}" });
  const typedCreate = ruleBinding("CreateItem", { post: "/v1/items/{validate_only}", body: "*" });

  it("converts path variables to the field's type", () => {
    expect(build(typedSearch, { vars: { page_size: "10", state: "ITEM_STATE_ACTIVE", include_archived: "true" } })).toMatchObject({
      pageSize: 10,
      state: ItemState.ACTIVE,
      includeArchived: true,
    });
    expect(build(typedSearch, { vars: { page_size: "1", state: "3", include_archived: "false" } })).toMatchObject({ state: ItemState.ARCHIVED });
  });

  it("names every invalid path variable", () => {
    expect(violations(typedSearch, { vars: { page_size: "-1", state: "ACTIVE", include_archived: "yes" } })).toEqual([
      { field: "page_size", description: 'expected an unsigned 32-bit integer, got "-1"' },
      {
        field: "state",
        description: 'expected one of ITEM_STATE_UNSPECIFIED, ITEM_STATE_DRAFT, ITEM_STATE_ACTIVE, ITEM_STATE_ARCHIVED (or its number), got "ACTIVE"',
      },
      { field: "include_archived", description: 'expected true or false, got "yes"' },
    ]);
  });

  it("compares a path variable with the body by value, not by spelling", () => {
    expect(build(typedCreate, { vars: { validate_only: "true" }, body: { validateOnly: true } })).toMatchObject({ validateOnly: true });
    expect(fieldsOf(typedCreate, { vars: { validate_only: "true" }, body: { validate_only: false } })).toEqual(["validate_only"]);
  });
});

describe("buildRequest: PATCH update masks", () => {
  const patch = (body: unknown, query = "") =>
    build<UpdateItemRequest>(updateItem, { vars: { "item.name": "projects/p/items/i" }, body, query }).updateMask?.paths;

  it("fills PATCH /api/v1/projects/{id}'s mask from the body's keys", () => {
    const msg = build<UpdateProjectRequest>(updateProject, { vars: { id: "p1" }, body: { name: "N", description: "" } });
    expect(msg).toMatchObject({ id: "p1", project: { name: "N", description: "" } });
    expect(msg.updateMask?.paths).toEqual(["name", "description"]);
  });

  it.each([
    [{ title: "T" }, ["title"]],
    [{ size_bytes: "3", createTime: "2026-01-01T00:00:00Z" }, ["size_bytes", "create_time"]],
    [{ owner: { displayName: "A", email: "e" } }, ["owner.display_name", "owner.email"]],
    [{ owner: {} }, ["owner"]],
    [{ owner: null }, ["owner"]],
    [{ labels: { a: "b" } }, ["labels"]],
    [{ attributes: { a: { b: 1 } } }, ["attributes"]],
    [{ tags: [] }, ["tags"]],
    [{ priority: null, note: "x" }, ["priority", "note"]],
    [{}, []],
  ])("body %j → mask %j", (body, paths) => {
    expect(patch(body)).toEqual(paths);
  });

  it("keeps the mask the client sends, in either spelling", () => {
    expect(patch({ title: "T", tags: ["a"] }, "updateMask=title")).toEqual(["title"]);
    expect(patch({ title: "T" }, "update_mask=owner.display_name")).toEqual(["owner.display_name"]);
    expect(patch({ title: "T" }, "updateMask=")).toEqual([]);
  });

  it("sets no mask when the client sends no body", () => {
    expect(patch(undefined)).toBeUndefined();
  });

  it("sets no mask on PUT", () => {
    expect(build(replaceProject, { vars: { id: "p1" }, body: { name: "n" } })).not.toHaveProperty("updateMask");
  });

  it("derives paths relative to the body's message, skipping unknown keys", () => {
    const field = updateProject.bodyField;
    if (field?.fieldKind !== "message") throw new Error("UpdateProject's body is the project message");
    expect(updateMaskPaths(field.message, { description: "x", nope: 1, name: "y" })).toEqual(["description", "name"]);
  });
});

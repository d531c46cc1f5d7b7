import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { GetAlertRuleResponseSchema } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { Access } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { GetProjectResponseSchema, ListProjectsResponseSchema, ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { errorEnvelope } from "../error-envelope.js";
import { bindingsOf } from "../transcoding/bindings.js";
import { renderResponse } from "../transcoding/response.js";
import { bindingFor } from "../transcoding/test-support.js";
import { componentValidator } from "./ajv-support.js";
import { openApiDocument } from "./document.js";
import { ERROR_STATUSES } from "./error-responses.js";
import { SCHEMA_REF_PREFIX } from "./schema.js";
import type { JsonSchema, OpenApiDocument, Operation, Ref, Response } from "./spec-types.js";
import { meshDocument, meshServices, operation, testDocument } from "./test-support.js";

const mesh = meshDocument();
const ref = (typeName: string) => ({ $ref: `${SCHEMA_REF_PREFIX}${typeName}` });

function operations(doc: OpenApiDocument): Operation[] {
  return Object.values(doc.paths).flatMap((item) => [
    ...Object.entries(item).filter(([k]) => k !== "x-additionalOperations").map(([, op]) => op as Operation),
    ...Object.values(item["x-additionalOperations"] ?? {}),
  ]);
}

function success(op: Operation, status = "200"): Response {
  const r = op.responses[status];
  if (r === undefined || "$ref" in r) throw new Error(`${op.operationId} has no inline ${status}`);
  return r;
}

/** Every `$ref` string in a JSON value. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === "$ref" && typeof v === "string" ? [v] : refsIn(v)));
}

/** Every Schema Object held under a `schema` key (parameters, media types, headers). */
function schemasIn(value: unknown): JsonSchema[] {
  if (Array.isArray(value)) return value.flatMap(schemasIn);
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === "schema" ? [v as JsonSchema] : schemasIn(v)));
}

describe("openApiDocument: a valid OpenAPI 3.1 document", () => {
  it.each<[string, OpenApiDocument]>([
    ["the mesh's services", mesh],
    ["the test service", testDocument()],
    ["a document with a server URL", openApiDocument(bindingsOf(meshServices), { title: "t", version: "1", serverUrl: "http://localhost:8080" })],
  ])("validates against the OpenAPI 3.1 schema: %s", async (_, doc) => {
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(JSON.stringify(doc)) as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it.each([["mesh", mesh], ["test", testDocument()]])("resolves every $ref (%s)", (_, doc) => {
    for (const r of refsIn(doc)) {
      const target = r.slice(2).split("/").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
      expect(target, r).toBeDefined();
    }
  });

  it.each([["mesh", mesh], ["test", testDocument()]])("has schemas that compile as strict JSON Schema 2020-12 (%s)", (_, doc) => {
    const v = componentValidator(doc.components.schemas);
    for (const name of Object.keys(doc.components.schemas)) expect(() => v.errors(name, {}), name).not.toThrow();
    const inline = schemasIn([doc.paths, doc.components.responses, doc.components.headers]);
    expect(inline.length).toBeGreaterThan(100);
    for (const s of inline) expect(() => v.errorsOf(s, null), JSON.stringify(s)).not.toThrow();
  });

  it("states its version, info and server", () => {
    const doc = openApiDocument([], { title: "mesh", version: "9", description: "d", serverUrl: "https://api.example" });
    expect(doc).toMatchObject({ openapi: "3.1.0", info: { title: "mesh", version: "9", description: "d" }, servers: [{ url: "https://api.example" }] });
    expect(openApiDocument([], { title: "mesh", version: "9" }).servers).toBeUndefined();
  });
});

describe("openApiDocument: the mesh's REST surface", () => {
  it("answers POST /api/v1/auth/register with 201 and the RegisterResponse, publicly", () => {
    const op = operation(mesh, "/api/v1/auth/register", "post");
    expect(op.operationId).toBe("AuthService_Register");
    expect(op.tags).toEqual(["AuthService"]);
    expect(op.responses["200"]).toBeUndefined();
    expect(success(op, "201").content).toEqual({ "application/json": { schema: ref("mesh.auth.v1.RegisterResponse") } });
    expect(op.requestBody?.content["application/json"]?.schema).toEqual(ref("mesh.auth.v1.RegisterRequest"));
    expect(op.security).toEqual([]);
  });

  it("lists page, limit, sort and order on GET /api/v1/projects, for a signed-in user", () => {
    const op = operation(mesh, "/api/v1/projects", "get");
    expect(op.parameters.map((p) => [p.name, p.in, p.schema.type])).toEqual([
      ["page", "query", "integer"], ["limit", "query", "integer"], ["sort", "query", "string"], ["order", "query", "string"],
    ]);
    expect(op.security).toEqual([{ bearerAuth: [] }]);
  });

  it("documents PATCH /api/v1/projects/{id}: id in the path, the project as body and answer", () => {
    const op = operation(mesh, "/api/v1/projects/{id}", "patch");
    expect(op.parameters).toEqual([
      { name: "id", in: "path", required: true, schema: { type: "string" } },
      expect.objectContaining({ name: "updateMask", in: "query" }),
    ]);
    expect(op.requestBody?.content["application/json"]?.schema).toEqual(ref("mesh.project.v1.Project"));
    expect(op.requestBody?.description).toContain("only the fields present in the body are changed");
    expect(success(op).content?.["application/json"]?.schema).toEqual(ref("mesh.project.v1.Project"));
    expect(Object.keys(mesh.paths["/api/v1/projects/{id}"] ?? {})).toEqual(["get", "put", "patch", "delete"]);
  });

  it("names path parameters in lowerCamelCase as the JSON does", () => {
    expect(operation(mesh, "/api/v1/projects/{projectId}/keys", "post").parameters[0]).toMatchObject({ name: "projectId", in: "path" });
  });

  it("documents GET /api/v1/logs:tail as SSE and NDJSON streams of log records", () => {
    const op = operation(mesh, "/api/v1/logs:tail", "get");
    expect(success(op).content).toEqual({
      "text/event-stream": { schema: ref("mesh.logging.v1.LogRecord") },
      "application/x-ndjson": { schema: ref("mesh.logging.v1.LogRecord") },
    });
    expect(op.description).toContain("event: error");
    expect(op.security).toEqual([{ bearerAuth: [] }, { apiKeyAuth: [] }]);
  });

  it("answers GET /api/v1/alerts/rules/{id} with the rule field's schema", () => {
    const op = operation(mesh, "/api/v1/alerts/rules/{id}", "get");
    expect(success(op).content?.["application/json"]?.schema).toEqual(ref("mesh.analytics.v1.AlertRule"));
  });

  it("documents the answers the gateway renders", () => {
    const v = componentValidator(mesh.components.schemas);
    const schemaOf = (path: string) => success(operation(mesh, path, "get")).content?.["application/json"]?.schema ?? {};
    const project = renderResponse(bindingFor(ProjectService, "GetProject"), create(GetProjectResponseSchema, { project: { id: "p" } }));
    expect(v.errorsOf(schemaOf("/api/v1/projects/{id}"), project)).toEqual([]);
    const list = renderResponse(bindingFor(ProjectService, "ListProjects"), create(ListProjectsResponseSchema, { projects: [{ id: "p" }], total: 1 }));
    expect(v.errorsOf(schemaOf("/api/v1/projects"), list)).toEqual([]);
    const rule = renderResponse(bindingFor(AnalyticsService, "GetAlertRule"), create(GetAlertRuleResponseSchema, { rule: { id: "r" } }));
    expect(v.errorsOf(schemaOf("/api/v1/alerts/rules/{id}"), rule)).toEqual([]);
    expect(v.errorsOf(schemaOf("/api/v1/alerts/rules/{id}"), { rule })).not.toEqual([]);
  });

  it("answers every error status with the one error envelope", () => {
    for (const op of operations(mesh)) {
      expect(Object.keys(op.responses).filter((s) => s >= "400").map(Number), op.operationId).toEqual([...ERROR_STATUSES]);
    }
    expect(ERROR_STATUSES).toEqual([400, 401, 403, 404, 405, 409, 413, 429, 500, 503, 504]);
    for (const r of Object.values(mesh.components.responses)) {
      expect(r.content).toEqual({ "application/json": { schema: { $ref: "#/components/schemas/ErrorEnvelope" } } });
    }
    const v = componentValidator(mesh.components.schemas);
    const envelope = errorEnvelope(new ConnectError("no", Code.NotFound), "req-1", new Date(0));
    expect(v.errors("ErrorEnvelope", JSON.parse(JSON.stringify(envelope)))).toEqual([]);
    expect(v.errors("ErrorEnvelope", { error: "NOT_FOUND" })).not.toEqual([]);
  });

  it("declares the bearer and API key schemes", () => {
    expect(mesh.components.securitySchemes).toMatchObject({
      bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
      apiKeyAuth: { type: "apiKey", in: "header", name: "x-api-key" },
    });
  });

  it("has one operation per admitted binding, unique ids, internal methods left out", () => {
    const ops = operations(mesh);
    const ids = ops.map((o) => o.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain("AuthService_Login");
    for (const internal of ["VerifyApiKey", "WatchKeyEvents", "ListActiveRoutes", "WatchRoutes", "IngestLogStream", "ListRevokedTokens"]) {
      expect(ops.some((o) => o.summary === internal)).toBe(false);
    }
    expect(ops).toHaveLength(bindingsOf(meshServices).length);
    expect(mesh.tags.map((t) => t.name)).toEqual(["AuthService", "ProjectService", "LoggingService", "AnalyticsService"]);
  });
});

describe("openApiDocument: google.api.http features (mesh.testing.v1)", () => {
  const doc = testDocument({ CreateItem: { access: Access.USER, successStatus: 201 } });

  it("writes {name=projects/*/items/*} as {name} with its pattern", () => {
    const [name] = operation(doc, "/v1/{name}", "get").parameters;
    expect(name).toEqual({
      name: "name", in: "path", required: true,
      description: "Matches `projects/*/items/*`, slashes included: send them as they are, not as %2F.",
      schema: { type: "string", pattern: "^projects/[^/]+/items/[^/]+$" },
    });
  });

  it("merges paths of one shape under the first one's names", () => {
    const patch = operation(doc, "/v1/{name}", "patch");
    expect(patch.operationId).toBe("TranscodingService_UpdateItem");
    expect(patch.parameters[0]).toMatchObject({ name: "name", in: "path", description: expect.stringContaining("Sets the request field `item.name`.") });
    expect(Object.keys(doc.paths["/v1/{name}"] ?? {})).toEqual(["get", "patch", "delete"]);
    expect(doc.paths["/v1/{item.name}"]).toBeUndefined();
  });

  it("writes {path=**} as {path} spanning segments", () => {
    expect(operation(doc, "/v1/files/{path}", "get").parameters[0]?.schema).toEqual({ type: "string", pattern: "^(?:[^/]+(?:/[^/]+)*)?$" });
    expect(operation(doc, "/v1/files/{folder}/index", "get").operationId).toBe("TranscodingService_GetFolderIndex");
  });

  it("keeps custom verbs in the path and puts custom methods under x-additionalOperations", () => {
    expect(operation(doc, "/v1/items:search", "get").operationId).toBe("TranscodingService_SearchItems");
    expect(operation(doc, "/v1/items", "SEARCH").operationId).toBe("TranscodingService_SearchItems_1");
    expect(operation(doc, "/v1/{parent}/items", "get").operationId).toBe("TranscodingService_SearchItems_2");
    expect(success(operation(doc, "/v1/{parent}/items:tail", "get")).content?.["text/event-stream"]?.schema).toEqual(ref("mesh.testing.v1.Item"));
  });

  it("documents both bindings of CreateItem: the item as body, or the whole request", () => {
    const scoped = operation(doc, "/v1/{parent}/items", "post");
    expect(scoped.operationId).toBe("TranscodingService_CreateItem");
    expect(scoped.requestBody?.content["application/json"]?.schema).toEqual(ref("mesh.testing.v1.Item"));
    expect(success(scoped, "201").content?.["application/json"]?.schema).toEqual(ref("mesh.testing.v1.Item"));
    const whole = operation(doc, "/v1/items", "post");
    expect(whole.operationId).toBe("TranscodingService_CreateItem_1");
    expect(whole.requestBody?.content["application/json"]?.schema).toEqual(ref("mesh.testing.v1.CreateItemRequest"));
    expect(whole.parameters).toEqual([]);
    expect(success(whole, "201").content?.["application/json"]?.schema).toEqual(ref("mesh.testing.v1.CreateItemResponse"));
  });

  it("documents no request body where the rule takes none", () => {
    expect(operation(doc, "/v1/{name}", "delete").requestBody).toBeUndefined();
  });

  it.each<[string, Access | undefined, unknown]>([
    ["PUBLIC", Access.PUBLIC, []],
    ["USER", Access.USER, [{ bearerAuth: [] }]],
    ["API_KEY", Access.API_KEY, [{ apiKeyAuth: [] }]],
    ["USER_OR_API_KEY", Access.USER_OR_API_KEY, [{ bearerAuth: [] }, { apiKeyAuth: [] }]],
    ["INTERNAL", Access.INTERNAL, undefined],
    ["UNSPECIFIED", Access.UNSPECIFIED, undefined],
  ])("maps access %s to the operation's security, or leaves a refused method out", (_, access, security) => {
    const d = testDocument({ GetFolderIndex: { access } });
    const op = d.paths["/v1/files/{folder}/index"]?.get;
    if (security === undefined) expect(op).toBeUndefined();
    else expect(op?.security).toEqual(security);
  });

  it("lists a binding whose path and method another operation holds in x-unlistedBindings", () => {
    const d = testDocument({}, { GetFolderIndex: { pattern: { case: "get", value: "/v1/{folder=folders/*}" } } });
    expect(d["x-unlistedBindings"]).toEqual([{
      operationId: "TranscodingService_GetFolderIndex", method: "GET", template: "/v1/{folder=folders/*}", reason: "GET /v1/{name} is already taken",
    }]);
    expect(operation(d, "/v1/{name}", "get").operationId).toBe("TranscodingService_GetItem");
    expect(doc["x-unlistedBindings"]).toBeUndefined();
  });

  it("marks every header and error response by reference", () => {
    const r = success(operation(doc, "/v1/items:search", "get"));
    expect(Object.keys(r.headers ?? {})).toEqual(["x-request-id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Cache"]);
    expect((operation(doc, "/v1/items:search", "get").responses["429"] as Ref).$ref).toBe("#/components/responses/TooManyRequests");
    expect(doc.components.responses["TooManyRequests"]?.headers?.["Retry-After"]).toEqual({ $ref: "#/components/headers/RetryAfter" });
  });
});

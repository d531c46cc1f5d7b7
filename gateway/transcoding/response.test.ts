import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { AlertRuleSchema, AnalyticsService, GetAlertRuleResponseSchema } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import {
  GetProjectResponseSchema,
  ListProjectsResponseSchema,
  ProjectSchema,
  ProjectService,
} from "../../gen/mesh/project/v1/project_pb.js";
import {
  GetFileResponseSchema,
  GetItemResponseSchema,
  ItemSchema,
  ItemState,
  SearchItemsResponseSchema,
  TailItemsResponseSchema,
  TranscodingService,
} from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { bindingsOf, type HttpBinding } from "./bindings.js";
import { renderResponse, successStatus } from "./response.js";
import { bindingFor, serviceWithRules } from "./test-support.js";

const createdAt = create(TimestampSchema, { seconds: 1795341600n, nanos: 5_000_000 });
const project = create(ProjectSchema, { id: "p1", name: "Shop", createdAt });

function searchWithResponseBody(responseBody: string): HttpBinding {
  const b = bindingsOf([serviceWithRules({ SearchItems: { get: "/v1/items", responseBody } })]).find((x) => x.method.name === "SearchItems");
  if (b === undefined) throw new Error("no SearchItems binding");
  return b;
}

describe("renderResponse", () => {
  it("renders only the response_body field of GET /api/v1/projects/{id}, defaults included", () => {
    const json = renderResponse(bindingFor(ProjectService, "GetProject"), create(GetProjectResponseSchema, { project }));
    expect(json).toEqual({ id: "p1", name: "Shop", description: "", createdAt: "2026-11-22T10:00:00.005Z" });
  });

  it("renders the whole message when there is no response_body, with zeros and empty lists", () => {
    const json = renderResponse(bindingFor(ProjectService, "ListProjects"), create(ListProjectsResponseSchema, { total: 0 }));
    expect(json).toEqual({ projects: [], total: 0, page: 0, limit: 0 });
  });

  it("renders the rule of GET /api/v1/alerts/rules/{id} in lowerCamelCase", () => {
    const rule = create(AlertRuleSchema, { id: "r1", windowSeconds: 300, threshold: 5, coolDownSeconds: 600, enabled: true });
    const json = renderResponse(bindingFor(AnalyticsService, "GetAlertRule"), create(GetAlertRuleResponseSchema, { rule }));
    expect(json).toMatchObject({ id: "r1", projectId: "", windowSeconds: 300, threshold: 5, coolDownSeconds: 600, enabled: true, route: "" });
    expect(json).not.toHaveProperty("rule");
    expect(json).not.toHaveProperty("window_seconds");
  });

  it("renders an unset response_body message as that message with defaults", () => {
    const json = renderResponse(bindingFor(ProjectService, "GetProject"), create(GetProjectResponseSchema));
    expect(json).toEqual({ id: "", name: "", description: "" });
  });

  it("renders int64 as strings, enums by name, maps, wrappers, Struct and timestamps", () => {
    const item = create(ItemSchema, {
      name: "projects/p/items/i",
      state: ItemState.ACTIVE,
      sizeBytes: 9007199254740993n,
      tags: ["a"],
      labels: { env: "prod" },
      priority: 0,
      attributes: { n: 1 },
      createTime: createdAt,
    });
    const json = renderResponse(bindingFor(TranscodingService, "SearchItems", "GET"), create(SearchItemsResponseSchema, { items: [item], total: 7n }));
    expect(json).toEqual({
      items: [
        {
          name: "projects/p/items/i",
          title: "",
          state: "ITEM_STATE_ACTIVE",
          sizeBytes: "9007199254740993",
          tags: ["a"],
          createTime: "2026-11-22T10:00:00.005Z",
          labels: { env: "prod" },
          priority: 0,
          attributes: { n: 1 },
        },
      ],
      total: "7",
      nextPageToken: "",
    });
  });

  it("leaves unset optional fields and wrappers out", () => {
    const json = renderResponse(bindingFor(TranscodingService, "GetItem"), create(GetItemResponseSchema, { item: create(ItemSchema) }));
    expect(json).toEqual({ name: "", title: "", state: "ITEM_STATE_UNSPECIFIED", sizeBytes: "0", tags: [], labels: {} });
  });

  it("renders each message of a server stream through its response_body", () => {
    const json = renderResponse(bindingFor(TranscodingService, "TailItems"), create(TailItemsResponseSchema, { item: create(ItemSchema, { note: "n" }) }));
    expect(json).toMatchObject({ note: "n", tags: [] });
  });

  it("renders bytes as base64", () => {
    const json = renderResponse(bindingFor(TranscodingService, "GetFile"), create(GetFileResponseSchema, { path: "a", content: new Uint8Array([1, 2, 3]) }));
    expect(json).toEqual({ path: "a", content: "AQID" });
  });

  it.each([
    ["total", create(SearchItemsResponseSchema, { total: 3n }), "3"],
    ["next_page_token", create(SearchItemsResponseSchema), ""],
    ["items", create(SearchItemsResponseSchema), []],
  ])("renders a non-message response_body %s", (field, message, expected) => {
    expect(renderResponse(searchWithResponseBody(field), message)).toEqual(expected);
  });
});

describe("successStatus", () => {
  it.each([
    ["POST /api/v1/projects", ProjectService, "CreateProject", 201],
    ["POST /api/v1/logs", LoggingService, "IngestLog", 201],
    ["POST /api/v1/alerts/rules", AnalyticsService, "CreateAlertRule", 201],
    ["POST /api/v1/auth/register", AuthService, "Register", 201],
    ["GET /api/v1/projects/{id}", ProjectService, "GetProject", 200],
    ["DELETE /api/v1/projects/{id}", ProjectService, "DeleteProject", 200],
    ["a method without policy", TranscodingService, "GetItem", 200],
  ] as const)("%s answers %d", (_, service, method, status) => {
    expect(successStatus(bindingFor(service, method).method)).toBe(status);
  });
});

import { describe, expect, it } from "vitest";
import { formatPathTemplate } from "../../lib/path-template.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { TranscodingService } from "../../test/gen/mesh/testing/v1/transcoding_pb.js";
import { bindingsOf, HttpRuleError } from "./bindings.js";
import { allServices, bindingFor, meshServices, serviceWithRules } from "./test-support.js";

function problemsOf(rules: Parameters<typeof serviceWithRules>[0]): readonly string[] {
  try {
    bindingsOf([serviceWithRules(rules)]);
  } catch (e) {
    if (e instanceof HttpRuleError) return e.problems;
    throw e;
  }
  throw new Error("expected HttpRuleError");
}

describe("bindingsOf", () => {
  it("accepts every rule of the mesh's services and the test service", () => {
    expect(() => bindingsOf(allServices)).not.toThrow();
  });

  it("makes one binding per rule of the mesh, and skips internal methods", () => {
    const bindings = bindingsOf(meshServices);
    const routes = bindings.map((b) => `${b.verb} ${b.template.source}`);
    expect(routes).toContain("GET /api/v1/projects/{id}");
    expect(routes).toContain("PATCH /api/v1/projects/{id}");
    expect(routes).toContain("GET /api/v1/logs:tail");
    expect(routes).toContain("GET /.well-known/jwks.json");
    const names = bindings.map((b) => b.method.name);
    for (const internal of ["VerifyApiKey", "WatchKeyEvents", "ListActiveRoutes", "WatchRoutes", "IngestLogStream", "ReadLogs", "ListRevokedTokens"]) {
      expect(names).not.toContain(internal);
    }
    expect(new Set(names).size).toBe(bindings.length);
  });

  it("resolves the body, response body and path fields of GET /api/v1/projects/{id}", () => {
    const b = bindingFor(ProjectService, "GetProject");
    expect(b).toMatchObject({ verb: "GET", body: "", responseBody: "project", service: ProjectService });
    expect(b.method).toBe(ProjectService.method.getProject);
    expect(b.responseBodyField?.name).toBe("project");
    expect(b.bodyField).toBeUndefined();
    expect([...b.pathFields].map(([k, fs]) => [k, fs.map((f) => f.name)])).toEqual([["id", ["id"]]]);
  });

  it("resolves body \"log\" of POST /api/v1/logs", () => {
    const b = bindingFor(LoggingService, "IngestLog");
    expect(b).toMatchObject({ verb: "POST", body: "log", responseBody: "" });
    expect(b.bodyField?.name).toBe("log");
  });

  it("makes one binding per additional binding, custom kinds included, in declaration order", () => {
    const b = bindingsOf([TranscodingService]).filter((x) => x.method.name === "SearchItems");
    expect(b.map((x) => `${x.verb} ${formatPathTemplate(x.template)}`)).toEqual([
      "GET /v1/items:search",
      "SEARCH /v1/items",
      "GET /v1/{parent=projects/*}/items",
    ]);
  });

  it("gives an additional binding its own body and response body", () => {
    const [first, second] = bindingsOf([TranscodingService]).filter((x) => x.method.name === "CreateItem");
    expect(first).toMatchObject({ body: "item", responseBody: "item" });
    expect(second).toMatchObject({ body: "*", responseBody: "", bodyField: undefined });
  });

  it("resolves a nested variable's fields from the input root", () => {
    const b = bindingFor(TranscodingService, "UpdateItem");
    expect([...b.pathFields].map(([k, fs]) => [k, fs.map((f) => f.name)])).toEqual([["item.name", ["item", "name"]]]);
  });

  it.each([
    [ProjectService, "UpdateProject", "update_mask"],
    [ProjectService, "UpdateRoute", "update_mask"],
    [TranscodingService, "UpdateItem", "update_mask"],
    [ProjectService, "ReplaceProject", undefined],
    [ProjectService, "GetProject", undefined],
    [TranscodingService, "CreateItem", undefined],
  ] as const)("%s.%s fills an update mask automatically: %s", (service, method, mask) => {
    expect(bindingFor(service, method).autoUpdateMask?.name).toBe(mask);
  });

  it("returns no binding for a service without rules", () => {
    const rules = Object.fromEntries(TranscodingService.methods.map((m) => [m.name, undefined]));
    expect(bindingsOf([serviceWithRules(rules)])).toEqual([]);
  });
});

describe("bindingsOf rule validation", () => {
  it.each([
    ["a variable naming a missing field", { GetItem: { get: "/v1/{nome}" } }, 'variable "{nome}" names no field of mesh.testing.v1.GetItemRequest'],
    ["a variable naming a missing nested field", { UpdateItem: { patch: "/v1/{item.nome}", body: "item" } }, 'variable "{item.nome}" names no field'],
    ["a variable naming a message field", { UpdateItem: { patch: "/v1/{item}" } }, 'variable "{item}" must name a singular scalar or enum field ("item" is a message field)'],
    ["a variable naming a repeated field", { SearchItems: { get: "/v1/{tags}" } }, 'variable "{tags}" must name a singular scalar or enum field ("tags" is a list field)'],
    ["a variable naming a map field", { SearchItems: { get: "/v1/{labels}" } }, '"labels" is a map field'],
    ["a variable naming a wrapper", { SearchItems: { get: "/v1/{limit}" } }, '"limit" is a message field'],
    ["a variable reaching into a scalar", { GetItem: { get: "/v1/{name.x}" } }, 'cannot reach into "name"'],
    ["a variable reaching into a Timestamp", { SearchItems: { get: "/v1/{created_after.seconds}" } }, 'cannot reach into "created_after"'],
    ["a body naming a missing field", { CreateItem: { post: "/v1/items", body: "itme" } }, 'body "itme" names no top-level field of mesh.testing.v1.CreateItemRequest'],
    ["a body naming a nested field", { UpdateItem: { patch: "/v1/items", body: "item.title" } }, 'body "item.title" names no top-level field'],
    ["a response_body naming a missing field", { GetItem: { get: "/v1/items", responseBody: "itme" } }, 'response_body "itme" names no top-level field of mesh.testing.v1.GetItemResponse'],
    ["a GET with a body", { SearchItems: { get: "/v1/items", body: "*" } }, 'GET must not have a body (body: "*")'],
    ["a body field also bound by the path", { CreateItem: { post: "/v1/{parent}", body: "parent" } }, 'body field "parent" is also bound by the path'],
    [
      "nested additional_bindings",
      { GetItem: { get: "/v1/a/{name}", additionalBindings: [{ get: "/v1/b/{name}", additionalBindings: [{ get: "/v1/c/{name}" }] }] } },
      "additional_bindings[0]: additional_bindings must not nest",
    ],
    ["a rule without a pattern", { GetItem: { body: "*" } }, "no HTTP method and path"],
    ["a custom pattern without a kind", { GetItem: { custom: { kind: "", path: "/v1/x" } } }, "custom pattern without a kind"],
    ["a malformed template", { GetItem: { get: "/v1/{name" } }, 'invalid path template "/v1/{name"'],
    ["a template not starting with /", { GetItem: { get: "v1/items" } }, 'template must start with "/"'],
  ])("refuses %s", (_, rules, problem) => {
    const problems = problemsOf(rules);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });

  it("refuses an invalid additional binding, naming it", () => {
    const problems = problemsOf({ SearchItems: { get: "/v1/items", additionalBindings: [{ get: "/v1/{nope}" }] } });
    expect(problems).toEqual([expect.stringMatching(/^mesh\.testing\.v1\.TranscodingService\.SearchItems additional_bindings\[0\]: variable "\{nope\}"/)]);
  });

  it("lists every problem of every method in one error", () => {
    const problems = problemsOf({
      GetItem: { get: "/v1/{nome}", responseBody: "itme" },
      CreateItem: { get: "/v1/items", body: "itme" },
    });
    expect(problems).toEqual([
      expect.stringContaining('GetItem: variable "{nome}"'),
      expect.stringContaining('GetItem: response_body "itme"'),
      expect.stringContaining("CreateItem: GET must not have a body"),
      expect.stringContaining('CreateItem: body "itme"'),
    ]);
  });

  it("puts every problem in the error message", () => {
    expect(() => bindingsOf([serviceWithRules({ GetItem: { get: "/v1/{a}/{b}" } })])).toThrow(
      /invalid google.api.http rules:\n {2}- .*"\{a\}".*\n {2}- .*"\{b\}"/,
    );
  });

  it("accepts a nested scalar variable and an enum variable", () => {
    const service = serviceWithRules({ SearchItems: { get: "/v1/{filter.owner.email}/{state}" } });
    const [b] = bindingsOf([service]).filter((x) => x.method.name === "SearchItems");
    expect([...(b?.pathFields.keys() ?? [])]).toEqual(["filter.owner.email", "state"]);
  });
});

describe("bindingsOf streaming methods", () => {
  it("refuses a rule on a client-streaming method", () => {
    expect(problemsOf({ ImportItems: { post: "/v1/items:import", body: "*" } })).toEqual([
      "mesh.testing.v1.TranscodingService.ImportItems: client-streaming methods cannot have an HTTP rule",
    ]);
  });

  it("accepts a rule on a server-streaming method", () => {
    expect(bindingFor(TranscodingService, "TailItems").method.methodKind).toBe("server_streaming");
  });
});

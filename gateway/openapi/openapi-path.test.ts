import { describe, expect, it } from "vitest";
import { matchPathTemplate, parsePathTemplate } from "../../lib/path-template.js";
import { openApiPath } from "./openapi-path.js";

describe("openApiPath", () => {
  it.each([
    ["/api/v1/projects", "/api/v1/projects", "/api/v1/projects"],
    ["/api/v1/projects/{id}", "/api/v1/projects/{id}", "/api/v1/projects/{}"],
    ["/api/v1/logs:tail", "/api/v1/logs:tail", "/api/v1/logs:tail"],
    ["/v1/{name=projects/*/items/*}", "/v1/{name}", "/v1/{}"],
    ["/v1/{item.name=projects/*/items/*}", "/v1/{item.name}", "/v1/{}"],
    ["/v1/{parent=projects/*}/items:tail", "/v1/{parent}/items:tail", "/v1/{}/items:tail"],
    ["/v1/files/{path=**}", "/v1/files/{path}", "/v1/files/{}"],
    ["/v1/*/x/**", "/v1/{_segment2}/x/{_segment4}", "/v1/{}/x/{}"],
  ])("writes %s as %s", (template, path, shape) => {
    const p = openApiPath(parsePathTemplate(template));
    expect(p.path).toBe(path);
    expect(p.shape).toBe(shape);
  });

  it("names variables with nameOf, keeping their field path", () => {
    const p = openApiPath(parsePathTemplate("/v1/{project_id}/keys"), (f) => f.join(".").toUpperCase());
    expect(p.path).toBe("/v1/{PROJECT_ID}/keys");
    expect(p.variables).toEqual([{ name: "PROJECT_ID", fieldPath: "project_id", matches: "*", pattern: undefined, multiSegment: false }]);
  });

  it.each([
    ["/v1/{id}", { matches: "*", pattern: undefined, multiSegment: false }],
    ["/v1/{name=projects/*}", { matches: "projects/*", pattern: "^projects/[^/]+$", multiSegment: true }],
    ["/v1/{name=projects/*/items/*}", { matches: "projects/*/items/*", pattern: "^projects/[^/]+/items/[^/]+$", multiSegment: true }],
    ["/v1/{path=**}", { matches: "**", pattern: "^(?:[^/]+(?:/[^/]+)*)?$", multiSegment: true }],
    ["/v1/{path=a.b/**}", { matches: "a.b/**", pattern: "^a\\.b(?:/[^/]+)*$", multiSegment: true }],
  ])("describes what %s's variable matches", (template, expected) => {
    expect(openApiPath(parsePathTemplate(template)).variables[0]).toMatchObject(expected);
  });

  it.each([
    ["/v1/{name=projects/*/items/*}", "/v1/projects/p1/items/i%2F1", "projects/p1/items/i%2F1", true],
    ["/v1/{path=**}", "/v1/a/b/c", "a/b/c", true],
    ["/v1/{path=a.b/**}", "/v1/a.b", "a.b", true],
    ["/v1/{path=a.b/**}", "/v1/a.b/x/y", "a.b/x/y", true],
    ["/v1/{path=a.b/**}", "/v1/aXb/x", undefined, false],
  ])("its pattern agrees with the matcher: %s on %s", (template, path, bound, accepted) => {
    const t = parsePathTemplate(template);
    const value = Object.values(matchPathTemplate(t, path) ?? {})[0];
    expect(value).toBe(bound);
    const pattern = new RegExp(openApiPath(t).variables[0]?.pattern ?? "");
    expect(pattern.test(path.slice("/v1/".length))).toBe(accepted);
  });
});

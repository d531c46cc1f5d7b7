import { describe, expect, it } from "vitest";
import { parsePathTemplate } from "../../lib/path-template.js";
import { bindingsOf } from "../transcoding/bindings.js";
import { meshServices } from "../transcoding/test-support.js";
import { overlappingRoutes, routeKey, templatesOverlap } from "./route-overlap.js";
import { GREETER, schemaOf } from "./test-support.js";

describe("templatesOverlap", () => {
  it.each<[string, string, boolean]>([
    ["/a/b", "/a/b", true],
    ["/a/b", "/a/c", false],
    ["/a/{x}", "/a/b", true],
    ["/a/{x}", "/a/{y}/c", false],
    ["/a/**", "/a/b/c/d", true],
    ["/a/**", "/a", true], // `**` also matches no segment
    ["/a/{path=**}", "/b/c", false],
    ["/%61/b", "/a/b", true], // literals compared canonically
    ["/a/{x}:run", "/a/{x}:stop", false],
    ["/a/{x}:run", "/a/{x}", true], // {x} also matches "id:run"
    ["/a/{x}:run", "/a/b", false],
    ["/a/{x}:run", "/a/b:run", true],
    ["/a/{x}:run", "/a/**", true],
  ])("%s and %s: %s", (a, b, overlap) => {
    expect(templatesOverlap(parsePathTemplate(a), parsePathTemplate(b))).toBe(overlap);
    expect(templatesOverlap(parsePathTemplate(b), parsePathTemplate(a))).toBe(overlap);
  });
});

describe("overlappingRoutes", () => {
  const builtin = bindingsOf(meshServices);

  it("finds nothing between the Greeter and the mesh's routes", () => {
    expect(overlappingRoutes(schemaOf(GREETER).bindings, builtin)).toEqual([]);
  });

  it("names both RPCs of a route that takes a built-in path, whatever the verb", () => {
    const squatter = schemaOf({ ...GREETER, methods: [{ ...GREETER.methods[0]!, http: { pattern: { case: "get", value: "/api/v1/auth/login" } } }] });
    expect(overlappingRoutes(squatter.bindings, builtin)).toEqual([
      "GET /api/v1/auth/login (demo.greeter.v1.Greeter/SayHello) overlaps POST /api/v1/auth/login (mesh.auth.v1.AuthService/Login)",
    ]);
  });
});

describe("routeKey", () => {
  it("is the verb and the template without variable names", () => {
    expect(schemaOf(GREETER).bindings.map(routeKey)).toEqual(["GET /api/v1/greeter/{*}", "POST /api/v1/greetings"]);
  });
});

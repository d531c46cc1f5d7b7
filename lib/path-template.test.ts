import { describe, expect, it } from "vitest";
import {
  comparePathTemplates,
  formatPathTemplate,
  matchPathTemplate,
  parsePathTemplate,
  PathTemplateError,
  type Segment,
} from "./path-template.js";

const lit = (value: string): Segment => ({ kind: "literal", value });
const star: Segment = { kind: "wildcard" };
const deep: Segment = { kind: "deep_wildcard" };

function parseError(template: string): PathTemplateError {
  try {
    parsePathTemplate(template);
  } catch (e) {
    if (e instanceof PathTemplateError) return e;
    throw e;
  }
  throw new Error(`expected ${template} to be rejected`);
}

function match(template: string, path: string): Record<string, string> | undefined {
  return matchPathTemplate(parsePathTemplate(template), path);
}

describe("parsePathTemplate", () => {
  it.each([
    ["/api/v1/projects/{id}", [lit("api"), lit("v1"), lit("projects"), star], [{ fieldPath: ["id"], start: 3, end: 4 }]],
    [
      "/api/v1/projects/{project_id}/keys",
      [lit("api"), lit("v1"), lit("projects"), star, lit("keys")],
      [{ fieldPath: ["project_id"], start: 3, end: 4 }],
    ],
    [
      "/api/v1/alerts/events/{id}/acknowledge",
      [lit("api"), lit("v1"), lit("alerts"), lit("events"), star, lit("acknowledge")],
      [{ fieldPath: ["id"], start: 4, end: 5 }],
    ],
    ["/.well-known/jwks.json", [lit(".well-known"), lit("jwks.json")], []],
    [
      "/v1/{name=projects/*/keys/*}",
      [lit("v1"), lit("projects"), star, lit("keys"), star],
      [{ fieldPath: ["name"], start: 1, end: 5 }],
    ],
    ["/v1/{name=files/**}", [lit("v1"), lit("files"), deep], [{ fieldPath: ["name"], start: 1, end: -1 }]],
    ["/v1/**", [lit("v1"), deep], []],
    ["/v1/messages/{sub.subfield}", [lit("v1"), lit("messages"), star], [{ fieldPath: ["sub", "subfield"], start: 2, end: 3 }]],
    ["/a:b/c", [lit("a:b"), lit("c")], []],
    ["/files/a%2Fb/x", [lit("files"), lit("a%2Fb"), lit("x")], []],
  ])("parses %s into segments and variables", (template, segments, variables) => {
    const t = parsePathTemplate(template);
    expect(t).toEqual({ segments, variables, source: template });
  });

  it("splits a custom verb off the last segment", () => {
    const t = parsePathTemplate("/api/v1/logs:tail");
    expect(t.segments).toEqual([lit("api"), lit("v1"), lit("logs")]);
    expect(t.verb).toBe("tail");
  });

  it("splits a custom verb after a variable", () => {
    const t = parsePathTemplate("/v1/{name=messages/*}:cancel");
    expect(t.variables).toEqual([{ fieldPath: ["name"], start: 1, end: 3 }]);
    expect(t.verb).toBe("cancel");
  });

  it("treats {var} as shorthand for {var=*}", () => {
    expect(parsePathTemplate("/a/{id}").segments).toEqual(parsePathTemplate("/a/{id=*}").segments);
  });

  it.each([
    ["api/v1", 'template must start with "/"', 0],
    ["/a/{id", 'unclosed "{"', 3],
    ["/a/{id=x/*", 'unclosed "{"', 3],
    ["/a/id}", 'unexpected "}"', 5],
    ["/v1/{name=projects/{id}}", "nested variables are not allowed", 19],
    ["/v1/**/x", '"**" must be the last segment', 4],
    ["/v1/{name=**}/x", '"**" must be the last segment', 10],
    ["/a/{id}/b/{id}", 'variable "id" is declared twice', 10],
    ["/a//b", "empty segment", 3],
    ["/a/b/", "empty segment", 5],
    ["/", "empty segment", 1],
    ["/a/{id=}", "empty segment", 7],
    ["/a/{1id}", 'invalid field path "1id"', 4],
    ["/a/{a..b}", 'invalid field path "a..b"', 4],
    ["/a/{}", "empty variable", 3],
    ["/a:", "empty verb", 3],
    ["/v1/{name}:", "empty verb", 11],
    ["/a/x{id}", 'unexpected "{"', 4],
    ["/a/{id}x", 'unexpected "x"', 7],
    ["/a/*x", 'unexpected "x"', 4],
    ["/a/***", 'unexpected "*"', 5],
    ["/a b", 'unexpected " "', 2],
    ["/a/%zz", "invalid percent-encoding", 3],
    ["/a:{b}", 'unexpected "{"', 3],
  ])("rejects %s: %s at %i", (template, reason, position) => {
    const err = parseError(template);
    expect({ reason: err.reason, position: err.position }).toEqual({ reason, position });
  });

  it("names the template, the problem and its position in the message", () => {
    expect(parseError("/a/id}").message).toBe('invalid path template "/a/id}": unexpected "}" at 5');
  });
});

describe("matchPathTemplate", () => {
  it("binds a single-segment variable", () => {
    expect(match("/api/v1/projects/{id}", "/api/v1/projects/p1")).toEqual({ id: "p1" });
  });

  it("binds several variables keyed by dotted field path", () => {
    expect(match("/v1/users/{user_id}/messages/{sub.subfield}", "/v1/users/me/messages/m1")).toEqual({
      user_id: "me",
      "sub.subfield": "m1",
    });
  });

  it("binds a multi-segment variable including its literal segments", () => {
    expect(match("/v1/{name=projects/*/keys/*}", "/v1/projects/p1/keys/k1")).toEqual({ name: "projects/p1/keys/k1" });
  });

  it("binds a variable before a custom verb", () => {
    expect(match("/v1/{name=messages/*}:cancel", "/v1/messages/123:cancel")).toEqual({ name: "messages/123" });
  });

  it("matches a literal template with a verb", () => {
    expect(match("/api/v1/logs:tail", "/api/v1/logs:tail")).toEqual({});
  });

  it("binds every remaining segment to a ** variable", () => {
    expect(match("/v1/{name=files/**}", "/v1/files/a/b/c.txt")).toEqual({ name: "files/a/b/c.txt" });
  });

  it("lets ** match zero segments", () => {
    expect(match("/v1/**", "/v1")).toEqual({});
  });

  it("binds a ** variable matching zero segments to its literal prefix", () => {
    expect(match("/v1/{name=files/**}", "/v1/files")).toEqual({ name: "files" });
  });

  it("fully decodes a single-segment variable, %2F included", () => {
    expect(match("/a/{id}", "/a/x%2Fy%20z%C3%A9")).toEqual({ id: "x/y zé" });
  });

  it("decodes a multi-segment variable except %2F and %2f", () => {
    expect(match("/v1/{name=files/**}", "/v1/files/a%2Fb/c%20d%2fe")).toEqual({ name: "files/a%2Fb/c d%2fe" });
  });

  it("keeps a colon inside a variable when the template has no verb", () => {
    expect(match("/v1/{name}", "/v1/a:b")).toEqual({ name: "a:b" });
  });

  it.each([
    ["a malformed escape", "/a/{id}", "/a/%zz"],
    ["an escape that is not UTF-8", "/a/{id}", "/a/%FF"],
    ["an extra segment", "/api/v1/projects/{id}", "/api/v1/projects/p1/keys"],
    ["a missing segment", "/api/v1/projects/{id}", "/api/v1/projects"],
    ["a wrong literal", "/api/v1/projects/{id}", "/api/v2/projects/p1"],
    ["a literal in another case", "/api/v1/projects/{id}", "/API/v1/projects/p1"],
    ["a wrong literal inside a variable", "/v1/{name=projects/*/keys/*}", "/v1/projects/p1/secrets/k1"],
    ["a wrong verb", "/v1/{name=messages/*}:cancel", "/v1/messages/123:undelete"],
    ["a missing verb", "/api/v1/logs:tail", "/api/v1/logs"],
    ["a verb the template lacks", "/api/v1/logs", "/api/v1/logs:tail"],
    ["a trailing slash", "/a/b", "/a/b/"],
    ["an empty segment for {id}", "/api/v1/projects/{id}", "/api/v1/projects/"],
    ["an empty segment inside the path", "/api/v1/projects/{project_id}/keys", "/api/v1/projects//keys"],
    ["an empty segment under **", "/v1/**", "/v1/"],
    ["a path without a leading slash", "/a/{id}", "a/x"],
  ])("does not match %s", (_why, template, path) => {
    expect(match(template, path)).toBeUndefined();
  });
});

describe("formatPathTemplate", () => {
  it.each([
    "/api/v1/projects/{id}",
    "/api/v1/projects/{project_id}/keys",
    "/api/v1/logs:tail",
    "/api/v1/alerts/events/{id}/acknowledge",
    "/.well-known/jwks.json",
    "/v1/{name=projects/*/keys/*}",
    "/v1/{name=files/**}",
    "/v1/**",
    "/v1/{name=messages/*}:cancel",
    "/v1/messages/{sub.subfield}",
    "/v1/{name=**}:undelete",
    "/a:b/c",
  ])("round-trips %s", (template) => {
    expect(formatPathTemplate(parsePathTemplate(template))).toBe(template);
  });

  it("writes {var=*} as {var}", () => {
    expect(formatPathTemplate(parsePathTemplate("/a/{id=*}"))).toBe("/a/{id}");
  });
});

describe("comparePathTemplates", () => {
  it.each([
    ["a literal over a variable", "/api/v1/logs/errors", "/api/v1/logs/{request_id}"],
    ["a verb over no verb", "/api/v1/logs:tail", "/api/v1/logs"],
    ["a verb over a variable that could capture it", "/v1/{name=**}:cancel", "/v1/{name}"],
    ["* over **", "/v1/*", "/v1/**"],
    ["a * variable over a ** variable", "/v1/{name=files/*}", "/v1/{name=files/**}"],
    ["more segments over fewer", "/v1/a/b", "/v1/a"],
    ["a trailing * over the end", "/v1/*/*", "/v1/*"],
    ["the end over a trailing **", "/v1", "/v1/**"],
    ["the first differing position over later ones", "/v1/a/*", "/v1/*/b"],
  ])("orders %s first", (_why, specific, general) => {
    const [a, b] = [parsePathTemplate(specific), parsePathTemplate(general)];
    expect([Math.sign(comparePathTemplates(a, b)), Math.sign(comparePathTemplates(b, a))]).toEqual([-1, 1]);
  });

  it.each([
    ["/a/b", "/a/c"],
    ["/a/{x}", "/a/*"],
  ])("ties %s and %s", (x, y) => {
    expect(comparePathTemplates(parsePathTemplate(x), parsePathTemplate(y))).toBe(0);
  });

  it("sorts the mesh's routes most specific first", () => {
    const routes = ["/api/v1/logs/{request_id}", "/v1/**", "/api/v1/logs", "/api/v1/logs/errors", "/api/v1/logs:tail"];
    const sorted = routes.map(parsePathTemplate).sort(comparePathTemplates).map((t) => t.source);
    expect(sorted).toEqual(["/api/v1/logs:tail", "/api/v1/logs/errors", "/api/v1/logs/{request_id}", "/api/v1/logs", "/v1/**"]);
  });
});

import { describe, expect, it } from "vitest";
import { parsePathTemplate } from "../../lib/path-template.js";
import { canonicalPath, canonicalTemplate, encodePathSegment, matchCanonical } from "./path.js";
import { canonical } from "./test-support.js";

describe("canonicalPath", () => {
  it.each([
    ["/", "/", []],
    ["/api/v1/projects", "/api/v1/projects", ["api", "v1", "projects"]],
    ["/api/v1/projects/p1", "/api/v1/projects/p1", ["api", "v1", "projects", "p1"]],
    // One trailing slash is dropped: "/a/" and "/a" are one path.
    ["/api/v1/projects/", "/api/v1/projects", ["api", "v1", "projects"]],
    // Unreserved characters written encoded are decoded and written plainly.
    ["/api/v1/projects/%70%31", "/api/v1/projects/p1", ["api", "v1", "projects", "p1"]],
    ["/a/%7e%41", "/a/~A", ["a", "~A"]],
    // "%2F" stays inside its segment, upper-cased.
    ["/files/a%2fb", "/files/a%2Fb", ["files", "a/b"]],
    ["/api/v1/logs:tail", "/api/v1/logs:tail", ["api", "v1", "logs:tail"]],
    ["/api/v1/logs%3Atail", "/api/v1/logs:tail", ["api", "v1", "logs:tail"]],
    ["/a/b%20c", "/a/b%20c", ["a", "b c"]],
    ["/a/%C3%A9t%c3%a9", "/a/%C3%A9t%C3%A9", ["a", "été"]],
    ["/a/x+y", "/a/x+y", ["a", "x+y"]],
    ["/.well-known/jwks.json", "/.well-known/jwks.json", [".well-known", "jwks.json"]],
    ["/a/...", "/a/...", ["a", "..."]],
    ["/a/..b/.c", "/a/..b/.c", ["a", "..b", ".c"]],
  ])("canonicalizes %s to %s", (raw, path, segments) => {
    expect(canonicalPath(raw)).toEqual({ kind: "canonical", path, segments });
  });

  it.each([
    // Security: encoded slashes and dots must not walk to another route.
    ["/api/v1/projects/x%2F..%2Fkeys", "dot_segment"],
    ["/api/v1/projects/x%2f.%2fkeys", "dot_segment"],
    ["/api/v1/./projects", "dot_segment"],
    ["/api/v1/projects/%2e%2e/keys", "dot_segment"],
    ["/api/v1/projects/%2E/keys", "dot_segment"],
    ["/api/v1/projects/.%2e", "dot_segment"],
    ["/api/v1/projects/..", "dot_segment"],
    ["/api/v1/projects/../../admin", "dot_segment"],
    ["/..", "dot_segment"],
    ["/api/v1/projects/%2e%2e%2F", "dot_segment"],
    ["/api/v1//projects", "empty_segment"],
    ["//api/v1/projects", "empty_segment"],
    ["/api/v1/projects//", "empty_segment"],
    ["//", "empty_segment"],
    ["/api/v1/projects/a%00b", "control_character"],
    ["/api/v1/projects/a%0d%0aSet-Cookie:x", "control_character"],
    ["/api/v1/projects/a%7Fb", "control_character"],
    ["/api/v1/projects/a%C2%85b", "control_character"],
    ["/api/v1/projects/a\u0000b", "control_character"],
    ["/api/v1/projects/a\tb", "control_character"],
    ["/api/v1/projects/%zz", "invalid_percent_encoding"],
    ["/api/v1/projects/abc%", "invalid_percent_encoding"],
    ["/api/v1/projects/abc%4", "invalid_percent_encoding"],
    ["/api/v1/projects/%C3", "invalid_percent_encoding"],
    ["/api/v1/projects/%FF%FE", "invalid_percent_encoding"],
    ["/api/v1/projects\\..\\keys", "backslash"],
    ["/api/v1/projects/a%5Cb", "backslash"],
    ["/api/v1/projects/a%5cb", "backslash"],
    ["api/v1/projects", "not_absolute"],
    ["", "not_absolute"],
    ["*", "not_absolute"],
    ["/api/v1/projects/a b", "invalid_character"],
    ["/api/v1/projects/a?b", "invalid_character"],
    ["/api/v1/projects/a#b", "invalid_character"],
    ["/api/v1/projects/été", "invalid_character"],
    ['/api/v1/projects/"x"', "invalid_character"],
  ])("rejects %s (%s)", (raw, reason) => {
    const result = canonicalPath(raw);
    expect(result).toMatchObject({ kind: "rejected", reason });
    expect(result.kind === "rejected" && result.message.length > 0).toBe(true);
  });

  it("gives encoded and plain spellings of one path the same canonical text", () => {
    const spellings = ["/api/v1/projects/abc", "/api/v1/projects/%61bc", "/api/v1/%70rojects/abc/", "/%61pi/v1/projects/ab%63"];
    expect(new Set(spellings.map((s) => canonical(s).path))).toEqual(new Set(["/api/v1/projects/abc"]));
  });

  it("keeps an encoded slash distinct from a real one", () => {
    expect(canonical("/files/a%2Fb").path).not.toBe(canonical("/files/a/b").path);
  });
});

describe("encodePathSegment", () => {
  it.each([
    ["abc", "abc"],
    ["a/b", "a%2Fb"],
    ["a b", "a%20b"],
    ["a%b", "a%25b"],
    ["a?b#c", "a%3Fb%23c"],
    ["x:y@z!$&'()*+,;=", "x:y@z!$&'()*+,;="],
    ["été", "%C3%A9t%C3%A9"],
  ])("encodes %s as %s", (segment, encoded) => {
    expect(encodePathSegment(segment)).toBe(encoded);
  });

  it("round-trips through canonicalPath", () => {
    const segment = "a/b c%d:é";
    expect(canonical(`/x/${encodePathSegment(segment)}`).segments).toEqual(["x", segment]);
  });
});

describe("matchCanonical", () => {
  const match = (template: string, raw: string) => matchCanonical(canonicalTemplate(parsePathTemplate(template)), canonical(raw));

  it.each([
    ["/api/v1/projects/{id}", "/api/v1/projects/p1", { id: "p1" }],
    ["/api/v1/projects/{id}", "/api/v1/projects/p1/", { id: "p1" }],
    ["/api/v1/projects/{id}", "/api/v1/projects/a%2Fb", { id: "a/b" }],
    ["/api/v1/projects/{id}", "/api/v1/projects/%E2%9C%93", { id: "✓" }],
    ["/v1/{name=projects/*/items/*}", "/v1/projects/p1/items/i%2F1", { name: "projects/p1/items/i%2F1" }],
    ["/v1/files/{path=**}", "/v1/files/a/b%20c/d", { path: "a/b c/d" }],
    ["/api/v1/logs:tail", "/api/v1/logs%3atail", {}],
    ["/a/%7e", "/a/~", {}],
    ["/a/~", "/a/%7E", {}],
    ["/files/a%2fb", "/files/a%2Fb", {}],
  ])("matches %s against %s", (template, raw, vars) => {
    expect(match(template, raw)).toEqual(vars);
  });

  it.each([
    ["/api/v1/projects/{project_id}/keys", "/api/v1/projects/x%2Fkeys"],
    ["/api/v1/projects/{id}", "/api/v1/projects/a/b"],
    ["/files/a%2Fb", "/files/a/b"],
    ["/api/v1/logs:tail", "/api/v1/logs"],
  ])("does not match %s against %s", (template, raw) => {
    expect(match(template, raw)).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { requestIdOf } from "./request-id.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("request id", () => {
  it.each([
    ["a UUID", "0b7e5f0e-2f7a-4c4e-9a53-0d6a4a3c2b1f"],
    ["one character", "a"],
    ["letters, digits and ._:-", "Client-7.retry:2_x"],
    ["128 characters", `a${"b".repeat(127)}`],
  ])("keeps a well-formed id: %s", (_, id) => {
    expect(requestIdOf(id)).toBe(id);
  });

  it("keeps the value of a one-value array", () => {
    expect(requestIdOf(["abc"])).toBe("abc");
  });

  it.each<[string, string | string[] | undefined]>([
    ["no header", undefined],
    ["an empty one", ""],
    ["129 characters", `a${"b".repeat(128)}`],
    ["a leading punctuation mark", "-abc"],
    ["a space", "abc def"],
    ["a CR/LF (header injection)", "abc\r\nx-evil: 1"],
    ["a slash", "a/b"],
    ["non-ASCII", "abcé"],
    ["two values joined by a proxy", "abc, def"],
    ["two values as an array", ["abc", "def"]],
    ["an empty array", []],
    ["a one-value array with a malformed value", ["a b"]],
  ])("replaces %s with a new UUID", (_, header) => {
    const a = requestIdOf(header);
    expect(a).toMatch(UUID);
    expect(requestIdOf(header)).not.toBe(a);
  });
});

import { describe, expect, it } from "vitest";
import { deadlineFor, parseGrpcTimeout } from "./deadline.js";

describe("parseGrpcTimeout", () => {
  it.each([
    ["2H", 7_200_000], ["3M", 180_000], ["1S", 1_000], ["200m", 200], ["5u", 1], ["10n", 1], ["1500u", 2],
    ["0m", 0], ["99999999S", 99_999_999_000],
  ])("reads %s as %i ms", (value, ms) => {
    expect(parseGrpcTimeout(value)).toBe(ms);
  });

  it.each([
    ["no unit", "100"], ["an unknown unit", "5s"], ["nine digits", "123456789m"], ["a sign", "-1S"], ["a space", "1 S"],
    ["a fraction", "1.5S"], ["an empty value", ""],
  ])("rejects %s", (_what, value) => {
    expect(parseGrpcTimeout(value)).toBeUndefined();
  });
});

describe("deadlineFor", () => {
  it.each([
    ["the route's timeout without a client timeout", 15_000, undefined, 15_000],
    ["the route's timeout for a null header", 15_000, null, 15_000],
    ["a shorter client timeout", 15_000, "200m", 200],
    ["the route's timeout over a longer client timeout", 15_000, "1M", 15_000],
    ["the route's timeout for a malformed client timeout", 15_000, "soon", 15_000],
    ["a zero client timeout (already expired)", 15_000, "0S", 0],
  ])("answers %s", (_what, route, header, ms) => {
    expect(deadlineFor(route, header)).toBe(ms);
  });
});

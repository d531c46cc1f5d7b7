import { describe, expect, it } from "vitest";
import { createViolations } from "../../../lib/errors.js";
import { makeLogInput } from "../../../test/support/logging-harness.js";
import { toEntry, type LogInput } from "./records.js";

const NOW = new Date("2026-01-01T00:00:00.000Z");
const FIVE_MINUTES = 5 * 60_000;
const chars = (n: number) => "x".repeat(n);

/** The fields `toEntry` refuses in `input`, checked under `prefix`. */
function violatedFields(input: LogInput, prefix = "log."): string[] {
  const v = createViolations();
  toEntry(v, prefix, input, NOW);
  return v.list.map((x) => x.field);
}

describe("toEntry", () => {
  it("accepts a complete record and stores every field, stamped as ingested now", () => {
    const input = makeLogInput({ timestamp: new Date(NOW.getTime() - 1_000), userId: "u", projectId: "p", apiKeyId: "k", errorCode: "X" });
    const v = createViolations();
    const { timestamp, ...rest } = input;
    expect(toEntry(v, "log.", input, NOW)).toEqual({ ...rest, timestamp, ingestedAt: NOW });
    expect(v.list).toEqual([]);
  });

  it("stamps a record without a timestamp with now", () => {
    expect(toEntry(createViolations(), "", makeLogInput({ timestamp: undefined }), NOW).timestamp).toEqual(NOW);
  });

  it("upper-cases and trims the method", () => {
    expect(toEntry(createViolations(), "", makeLogInput({ method: " patch " }), NOW).method).toBe("PATCH");
  });

  it.each<[string, Partial<LogInput>]>([
    ["request_id", { requestId: "" }],
    ["request_id", { requestId: chars(129) }],
    ["request_id", { requestId: "has space" }],
    ["request_id", { requestId: "slash/inside" }],
    ["method", { method: "" }],
    ["method", { method: "G3T" }],
    ["method", { method: chars(17) }],
    ["path", { path: "" }],
    ["path", { path: "no-slash" }],
    ["path", { path: `/${chars(2048)}` }],
    ["status_code", { statusCode: 0 }],
    ["status_code", { statusCode: 99 }],
    ["status_code", { statusCode: 600 }],
    ["status_code", { statusCode: 200.5 }],
    ["latency", { latency: -0.1 }],
    ["latency", { latency: Number.NaN }],
    ["latency", { latency: Number.POSITIVE_INFINITY }],
    ["cache_status", { cacheStatus: "hit" }],
    ["cache_status", { cacheStatus: "STALE" }],
    ["timestamp", { timestamp: new Date(NOW.getTime() + FIVE_MINUTES + 1) }],
    ["trace_id", { traceId: chars(65) }],
    ["span_id", { spanId: chars(33) }],
    ["route", { route: chars(2049) }],
    ["ip", { ip: chars(65) }],
    ["user_agent", { userAgent: chars(1025) }],
    ["user_id", { userId: chars(129) }],
    ["project_id", { projectId: chars(129) }],
    ["api_key_id", { apiKeyId: chars(129) }],
    ["upstream_service", { upstreamService: chars(65) }],
    ["error_code", { errorCode: chars(65) }],
  ])("refuses an invalid %s (%j) under the field's prefixed name", (field, bad) => {
    expect(violatedFields(makeLogInput(bad))).toEqual([`log.${field}`]);
  });

  it.each<[string, Partial<LogInput>]>([
    ["a 128-character request id of every allowed character", { requestId: `aZ0._:-${chars(121)}` }],
    ["a 16-letter method", { method: "A".repeat(16) }],
    ["a 2048-character path", { path: `/${chars(2047)}` }],
    ["status 100", { statusCode: 100 }],
    ["status 599", { statusCode: 599 }],
    ["zero latency", { latency: 0 }],
    ["an empty cache status", { cacheStatus: "" }],
    ["cache status HIT", { cacheStatus: "HIT" }],
    ["cache status BYPASS", { cacheStatus: "BYPASS" }],
    ["a timestamp exactly five minutes ahead", { timestamp: new Date(NOW.getTime() + FIVE_MINUTES) }],
    ["a timestamp long ago", { timestamp: new Date(0) }],
    ["fields at their maximum length", {
      traceId: chars(64), spanId: chars(32), route: chars(2048), ip: chars(64), userAgent: chars(1024), userId: chars(128),
      projectId: chars(128), apiKeyId: chars(128), upstreamService: chars(64), errorCode: chars(64),
    }],
  ])("accepts %s", (_, good) => {
    expect(violatedFields(makeLogInput(good))).toEqual([]);
  });

  it("reports every invalid field of one record at once, under the given prefix", () => {
    const bad = makeLogInput({ requestId: "", method: "1", path: "x", statusCode: 1, latency: -1 });
    expect(violatedFields(bad, "")).toEqual(["request_id", "method", "path", "status_code", "latency"]);
  });
});

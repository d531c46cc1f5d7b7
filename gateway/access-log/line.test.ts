import { describe, expect, it } from "vitest";
import { accessLogLine } from "./line.js";

describe("accessLogLine", () => {
  it("maps every field of the record to its snake_case name", () => {
    expect(accessLogLine({
      requestId: "req-1", traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", method: "POST",
      path: "/api/v1/projects", route: "/api/v1/projects", statusCode: 201, latency: 12.3456789, ip: "203.0.113.7",
      userAgent: "curl/8", userId: "u1", projectId: "p1", apiKeyId: "k1", cacheStatus: "MISS", rateLimited: true,
      upstreamService: "project", bytesIn: 10, bytesOut: 20, errorCode: "CONFLICT",
    })).toEqual({
      request_id: "req-1", method: "POST", path: "/api/v1/projects", route: "/api/v1/projects", status: 201, latency_ms: 12.346,
      bytes_in: 10, bytes_out: 20, user_id: "u1", project_id: "p1", api_key_id: "k1", cache: "MISS", rate_limited: true,
      upstream: "project", error_code: "CONFLICT", trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", span_id: "00f067aa0ba902b7",
    });
  });

  it("writes zero values for absent fields, so every line has the same keys", () => {
    expect(accessLogLine({ requestId: "req-2" })).toEqual({
      request_id: "req-2", method: "", path: "", route: "", status: 0, latency_ms: 0, bytes_in: 0, bytes_out: 0, user_id: "",
      project_id: "", api_key_id: "", cache: "", rate_limited: false, upstream: "", error_code: "", trace_id: "", span_id: "",
    });
  });
});

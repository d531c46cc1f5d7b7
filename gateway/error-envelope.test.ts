import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { DebugInfoSchema, ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { invalidArgument } from "../lib/errors.js";
import { errorEnvelope, httpError, methodNotAllowed } from "./error-envelope.js";
import { errorNameFor, httpStatusFor } from "./http-status.js";

const NOW = new Date("2026-11-22T10:00:00.000Z");

describe("errorEnvelope", () => {
  it.each([
    [Code.InvalidArgument, 400, "VALIDATION_ERROR"], [Code.Unauthenticated, 401, "UNAUTHORIZED"], [Code.PermissionDenied, 403, "FORBIDDEN"],
    [Code.NotFound, 404, "NOT_FOUND"], [Code.AlreadyExists, 409, "CONFLICT"], [Code.ResourceExhausted, 429, "TOO_MANY_REQUESTS"],
    [Code.Unavailable, 503, "UNAVAILABLE"], [Code.DeadlineExceeded, 504, "TIMEOUT"], [Code.Internal, 500, "INTERNAL"],
  ])("renders code %s as HTTP %s %s with the message, request id and time", (code, status, name) => {
    expect(errorEnvelope(new ConnectError("project not found", code), "req-1", NOW)).toEqual({
      error: name, message: "project not found", statusCode: status, timestamp: "2026-11-22T10:00:00.000Z", requestId: "req-1", details: [],
    });
  });

  it("maps every code to a status and a name", () => {
    for (const code of Object.values(Code).filter((c): c is Code => typeof c === "number")) {
      expect([typeof httpStatusFor[code], typeof errorNameFor[code]]).toEqual(["number", "string"]);
    }
  });

  it("answers TOKEN_EXPIRED for an unauthenticated error whose reason says the token expired", () => {
    const err = new ConnectError("access token expired", Code.Unauthenticated, undefined,
      [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: "TOKEN_EXPIRED", domain: "auth.mesh" }) }]);
    expect(errorEnvelope(err, "r", NOW)).toMatchObject({ error: "TOKEN_EXPIRED", statusCode: 401 });
  });

  it("keeps typed details as proto3 JSON with their @type, leaving debug info out", () => {
    const err = invalidArgument([{ field: "name", description: "must not be empty" }]);
    err.details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: { seconds: 2n } }) });
    err.details.push({ desc: DebugInfoSchema, value: create(DebugInfoSchema, { detail: "stack trace" }) });
    expect(errorEnvelope(err, "r", NOW).details).toEqual([
      { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "name", description: "must not be empty" }] },
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "2s" },
    ]);
  });

  it("hides the message of anything thrown that is not a ConnectError", () => {
    expect(errorEnvelope(new TypeError("cannot read properties of undefined (secret)"), "r", NOW))
      .toMatchObject({ error: "INTERNAL", statusCode: 500, message: "internal error" });
  });
});

describe("httpError", () => {
  it("answers its own HTTP status and name, keeping its Connect code for native clients", () => {
    const err = httpError("too big", Code.ResourceExhausted, 413, "PAYLOAD_TOO_LARGE");
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(errorEnvelope(err, "r", NOW)).toMatchObject({ error: "PAYLOAD_TOO_LARGE", statusCode: 413, message: "too big" });
    expect(errorEnvelope(methodNotAllowed("DELETE", "/x"), "r", NOW)).toMatchObject({ error: "METHOD_NOT_ALLOWED", statusCode: 405, message: "DELETE is not allowed on /x" });
  });
});

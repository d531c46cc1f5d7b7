import type { JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { redactSecrets, redactUrl } from "./redact.js";

describe("secret redaction", () => {
  it.each([
    ["redis://user:secret@redis:6379", "redis://***@redis:6379"],
    ["rediss://:secret@redis:6380/0", "rediss://***@redis:6380/0"],
    ["redis://user:p@ss@redis:6379", "redis://***@redis:6379"],
    ["https://idp.example.com/jwks.json?access_token=secret&v=2", "https://idp.example.com/jwks.json?access_token=***&v=***"],
    ["https://idp.example.com/jwks.json?secret", "https://idp.example.com/jwks.json?***"],
    ["https://idp.example.com/jwks.json#secret", "https://idp.example.com/jwks.json#***"],
    ["redis://redis:6379", "redis://redis:6379"],
    ["http://localhost:3000", "http://localhost:3000"],
    ["127.0.0.1:50051", "127.0.0.1:50051"],
    ["mesh.auth.v1.AuthService", "mesh.auth.v1.AuthService"],
  ])("redacts %s as %s", (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it("redacts URLs anywhere in the tree and string values under secret-like keys, leaving the rest", () => {
    const dump: JsonValue = {
      redis: { url: "redis://user:secret@host:6379" },
      filters: [{ authn: { jwksUrl: "https://idp/jwks?key=secret", verifiedTokenCacheSize: 10000 } }, { apiKey: { headerName: "x-api-key" } }],
      extra: { password: "secret", clientSecret: "secret", token: "" },
      listener: { port: 8080, address: "0.0.0.0", tls: null, on: true },
    };
    expect(redactSecrets(dump)).toEqual({
      redis: { url: "redis://***@host:6379" },
      filters: [{ authn: { jwksUrl: "https://idp/jwks?key=***", verifiedTokenCacheSize: 10000 } }, { apiKey: { headerName: "x-api-key" } }],
      extra: { password: "***", clientSecret: "***", token: "" },
      listener: { port: 8080, address: "0.0.0.0", tls: null, on: true },
    });
  });
});

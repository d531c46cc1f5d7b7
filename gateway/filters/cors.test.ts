import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { CorsFilterSchema } from "../../gen/mesh/gateway/v1/config_pb.js";
import type { FilterConfig } from "../config/resolved-config.js";
import { createCors } from "./cors.js";

const config = (o: Partial<{ allowedOrigins: string[]; allowCredentials: boolean }> = {}) => create(CorsFilterSchema, {
  allowedOrigins: ["https://app.example.com"], allowedMethods: ["GET", "POST", "PATCH"], allowedHeaders: ["authorization", "content-type", "x-api-key"],
  exposedHeaders: ["X-Request-Id", "X-RateLimit-Remaining", "X-Cache"], maxAge: create(DurationSchema, { seconds: 600n }), ...o,
}) as unknown as FilterConfig<"cors">;

const h = (init: Record<string, string>) => new Headers(init);

describe("cors", () => {
  it("answers an allowed preflight itself with 204, the methods, the requested headers it allows and max age", () => {
    const out = createCors(config())("OPTIONS", h({ origin: "https://app.example.com", "access-control-request-method": "PATCH", "access-control-request-headers": "Authorization, X-Evil" }));
    expect(out.kind).toBe("preflight");
    expect(out.kind === "preflight" && out.status).toBe(204);
    expect(Object.fromEntries(out.headers)).toEqual({
      vary: "Origin", "access-control-allow-origin": "https://app.example.com", "access-control-allow-methods": "GET, POST, PATCH",
      "access-control-allow-headers": "authorization", "access-control-max-age": "600",
    });
  });

  it("refuses a preflight from another origin or for another method with 403 and no allow headers", () => {
    const cors = createCors(config());
    for (const headers of [
      h({ origin: "https://evil.example.com", "access-control-request-method": "GET" }),
      h({ origin: "https://app.example.com", "access-control-request-method": "DELETE" }),
    ]) {
      const out = cors("OPTIONS", headers);
      expect([out.kind, out.kind === "preflight" && out.status, out.headers.has("access-control-allow-origin")]).toEqual(["preflight", 403, false]);
    }
  });

  it("lets an actual request from an allowed origin read the exposed headers", () => {
    const out = createCors(config())("GET", h({ origin: "https://app.example.com" }));
    expect(Object.fromEntries(out.headers)).toEqual({
      vary: "Origin", "access-control-allow-origin": "https://app.example.com", "access-control-expose-headers": "X-Request-Id, X-RateLimit-Remaining, X-Cache",
    });
  });

  it("adds nothing a browser would honour for a disallowed origin, and nothing at all without Origin", () => {
    const cors = createCors(config());
    expect(cors("GET", h({ origin: "https://evil.example.com" })).headers.has("access-control-allow-origin")).toBe(false);
    expect([...cors("GET", h({})).headers]).toEqual([]);
  });

  it("answers * for any origin without credentials, and echoes the origin with credentials", () => {
    expect(createCors(config({ allowedOrigins: ["*"] }))("GET", h({ origin: "https://x.example" })).headers.get("access-control-allow-origin")).toBe("*");
    const creds = createCors(config({ allowCredentials: true }))("GET", h({ origin: "https://app.example.com" })).headers;
    expect([creds.get("access-control-allow-origin"), creds.get("access-control-allow-credentials")]).toEqual(["https://app.example.com", "true"]);
  });
});

import { durationMs } from "@bufbuild/protobuf/wkt";
import type { FilterConfig } from "../config/resolved-config.js";
import { HeaderMap } from "../../lib/header-map.js";

/** What the CORS filter decided for one request. */
export type CorsOutcome =
  /** A preflight: answer it now with these headers and 204 (or 403 when the origin or method is not allowed). */
  | { readonly kind: "preflight"; readonly status: 204 | 403; readonly headers: Headers }
  /** An actual request: go on, adding these headers to the reply. */
  | { readonly kind: "continue"; readonly headers: Headers };

/**
 * CORS for browser clients, from an allow-list of exact origins (or "*").
 * Preflights (OPTIONS with Access-Control-Request-Method) are answered by the
 * gateway itself and never reach a service; actual requests from an allowed
 * origin get Access-Control-Allow-Origin and the exposed headers
 * (X-Request-Id, X-RateLimit-*, X-Cache, Retry-After, gRPC status headers),
 * so scripts can read them. Replies vary by Origin. A disallowed origin gets
 * no CORS headers (the browser then blocks the reply).
 */
export function createCors(cfg: FilterConfig<"cors">) {
  const any = cfg.allowedOrigins.includes("*");
  const origins = new Set(cfg.allowedOrigins);
  const methods = new Set(cfg.allowedMethods.map((m) => m.toUpperCase()));
  const allowedHeaders = cfg.allowedHeaders.map((h) => h.toLowerCase());
  const exposed = cfg.exposedHeaders.join(", ");
  const maxAge = String(Math.round(durationMs(cfg.maxAge) / 1000));

  function base(origin: string): Headers {
    const h = new HeaderMap({ vary: "Origin" });
    h.set("access-control-allow-origin", any && !cfg.allowCredentials ? "*" : origin);
    if (cfg.allowCredentials) h.set("access-control-allow-credentials", "true");
    return h;
  }

  return function cors(method: string, headers: Headers): CorsOutcome {
    const origin = headers.get("origin");
    const allowed = origin !== null && (any || origins.has(origin));
    const requested = headers.get("access-control-request-method");
    if (method === "OPTIONS" && origin !== null && requested !== null) {
      if (!allowed || !methods.has(requested.toUpperCase())) return { kind: "preflight", status: 403, headers: new HeaderMap({ vary: "Origin" }) };
      const h = base(origin);
      h.set("access-control-allow-methods", [...methods].join(", "));
      const asked = (headers.get("access-control-request-headers") ?? "").split(",").map((x) => x.trim().toLowerCase()).filter(Boolean);
      const ok = asked.filter((x) => allowedHeaders.includes(x));
      h.set("access-control-allow-headers", (ok.length > 0 ? ok : allowedHeaders).join(", "));
      h.set("access-control-max-age", maxAge);
      return { kind: "preflight", status: 204, headers: h };
    }
    if (!allowed) return { kind: "continue", headers: new HeaderMap(origin === null ? {} : { vary: "Origin" }) };
    const h = base(origin);
    if (exposed) h.set("access-control-expose-headers", exposed);
    return { kind: "continue", headers: h };
  };
}

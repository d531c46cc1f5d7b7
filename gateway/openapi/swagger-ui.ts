import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { AnyRequest, AnyResponse } from "../server/listener.js";

/** Where the page is served; its assets are `/api-docs/<file>`. */
export const API_DOCS_PATH = "/api-docs";

export interface ApiDocsOptions {
  /** URL of the OpenAPI document the page loads; default "/openapi.json". */
  readonly specUrl?: string;
  /** Page title; default "mesh API". */
  readonly title?: string;
  /**
   * When given, the handler also answers `GET <specUrl>` with it as JSON,
   * serialized once; or with what a function returns, serialized again
   * whenever it returns another object (a schema that changes at run time).
   */
  readonly document?: object | (() => object);
}

/** Answers the request and returns true, or returns false without touching `res`. */
export type ApiDocsHandler = (req: AnyRequest, res: AnyResponse) => boolean;

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly cache: string;
  readonly etag: string;
}

/** Files of the `swagger-ui-dist` package the page loads; nothing else of the package is served. */
const DIST_FILES: Readonly<Record<string, string>> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "index.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
  "favicon-16x16.png": "image/png",
};
/** The package's files change only with its version: cached for a day, revalidated by ETag. */
const DIST_CACHE = "public, max-age=86400";
/** Generated from the options: always revalidated. */
const PAGE_CACHE = "no-cache";

/**
 * Swagger UI at `/api-docs`, from the `swagger-ui-dist` package's files (no
 * CDN: the machines are offline), read once here so a missing package fails
 * at startup. Answers GET and HEAD of `/api-docs` and `/api-docs/` (the
 * page), `/api-docs/<file>` for an allow-list of files (the bundle, its
 * standalone preset, the CSS, the favicons and the generated initializer
 * pointing at `specUrl`), and `specUrl` when `document` is given. Replies
 * carry an ETag (304 on `If-None-Match`) and `nosniff`. Anything else,
 * including `/api-docs/../x`, encoded dots and unknown files, returns false
 * so the caller routes it (the REST router refuses or 404s it).
 */
export function createApiDocsHandler(options: ApiDocsOptions = {}): ApiDocsHandler {
  const specUrl = options.specUrl ?? "/openapi.json";
  const dir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(DIST_FILES)) {
    assets.set(`${API_DOCS_PATH}/${name}`, asset(readFileSync(join(dir, name)), type, DIST_CACHE));
  }
  assets.set(`${API_DOCS_PATH}/swagger-initializer.js`,
    asset(Buffer.from(initializerJs(specUrl)), "text/javascript; charset=utf-8", PAGE_CACHE));
  const page = asset(Buffer.from(pageHtml(options.title ?? "mesh API")), "text/html; charset=utf-8", PAGE_CACHE);
  assets.set(API_DOCS_PATH, page).set(`${API_DOCS_PATH}/`, page);
  const spec = specAsset(options.document);
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = pathOf(req.url ?? "");
    const found = path === specUrl && spec !== undefined ? spec() : assets.get(path);
    if (found === undefined) return false;
    send(req, res, found);
    return true;
  };
}

/** The document's asset, made again only when the document is another object. */
function specAsset(document: ApiDocsOptions["document"]): (() => Asset) | undefined {
  if (document === undefined) return undefined;
  const current = typeof document === "function" ? document : () => document;
  let last: { doc: object; asset: Asset } | undefined;
  return () => {
    const doc = current();
    if (last === undefined || last.doc !== doc) last = { doc, asset: asset(Buffer.from(JSON.stringify(doc)), "application/json; charset=utf-8", PAGE_CACHE) };
    return last.asset;
  };
}

/** The path of an origin-form request target, without query or fragment. */
function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

function asset(body: Buffer, type: string, cache: string): Asset {
  return { body, type, cache, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
}

function send(req: AnyRequest, res: AnyResponse, a: Asset): void {
  const headers: Record<string, string> = {
    "cache-control": a.cache,
    etag: a.etag,
    "x-content-type-options": "nosniff",
  };
  const fresh = req.headers["if-none-match"]?.split(",").some((t) => t.trim() === a.etag || t.trim() === "*") ?? false;
  if (!fresh) Object.assign(headers, { "content-type": a.type, "content-length": String(a.body.length) });
  (res as { writeHead(status: number, headers: Record<string, string>): void }).writeHead(fresh ? 304 : 200, headers);
  if (fresh || req.method === "HEAD") res.end();
  else res.end(a.body);
}

/** The script that starts Swagger UI on the spec (a file, not inline, so a strict CSP can allow 'self' only). */
function initializerJs(specUrl: string): string {
  return `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: ${JSON.stringify(specUrl)},
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
`;
}

function pageHtml(title: string): string {
  const p = API_DOCS_PATH;
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>${escapeHtml(title)}</title>
    <link rel="stylesheet" type="text/css" href="${p}/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="${p}/index.css">
    <link rel="icon" type="image/png" href="${p}/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="${p}/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${p}/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="${p}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="${p}/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

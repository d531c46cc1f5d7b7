import { readFileSync } from "node:fs";
import http, { type IncomingHttpHeaders } from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiDocsHandler } from "./swagger-ui.js";

const dist = (file: string) => readFileSync(createRequire(import.meta.url).resolve(`swagger-ui-dist/${file}`));

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** The handler behind a server that answers 418 whatever it declines, so a decline is visible. */
function serve(server: http.Server | http2.Http2Server) {
  const handler = createApiDocsHandler({ specUrl: "/openapi.json", title: "mesh <API>", document: { openapi: "3.1.0" } });
  server.on("request", (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (handler(req, res)) return;
    res.statusCode = 418;
    res.end();
  });
}

describe("createApiDocsHandler over HTTP/1.1", () => {
  const server = http.createServer();
  serve(server);
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Sends `path` exactly as written (no URL normalization, unlike fetch). */
  const request = (path: string, method = "GET", headers: http.OutgoingHttpHeaders = {}) => new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });

  it.each(["/api-docs", "/api-docs/", "/api-docs?x=1"])("answers the page at %s", async (path) => {
    const r = await request(path);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(r.headers["cache-control"]).toBe("no-cache");
    const html = r.body.toString();
    for (const asset of ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-initializer.js", "favicon-32x32.png"]) {
      expect(html).toContain(`"/api-docs/${asset}"`);
    }
    expect(html).toContain("<title>mesh &#60;API&#62;</title>");
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("points the initializer at the spec URL", async () => {
    const r = await request("/api-docs/swagger-initializer.js");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(r.body.toString()).toContain('url: "/openapi.json"');
  });

  it.each([
    ["swagger-ui.css", "text/css; charset=utf-8"],
    ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
    ["swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"],
    ["favicon-32x32.png", "image/png"],
    ["favicon-16x16.png", "image/png"],
  ])("answers /api-docs/%s from swagger-ui-dist", async (file, type) => {
    const r = await request(`/api-docs/${file}`);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe(type);
    expect(r.headers["cache-control"]).toBe("public, max-age=86400");
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect(r.headers["content-length"]).toBe(String(r.body.length));
    expect(r.body.equals(dist(file))).toBe(true);
  });

  it("answers 304 to a matching If-None-Match and HEAD without a body", async () => {
    const first = await request("/api-docs/swagger-ui.css");
    const again = await request("/api-docs/swagger-ui.css", "GET", { "if-none-match": first.headers.etag ?? "" });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const head = await request("/api-docs/swagger-ui.css", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(first.headers["content-length"]);
    expect(head.body.length).toBe(0);
  });

  it("serves the document at the spec URL when given one", async () => {
    const r = await request("/openapi.json");
    expect(r.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(r.body.toString())).toEqual({ openapi: "3.1.0" });
  });

  it.each([
    "/api-docs/../package.json",
    "/api-docs/..%2Fpackage.json",
    "/api-docs/%2e%2e/package.json",
    "/api-docs/package.json",
    "/api-docs/index.html",
    "/api-docs/swagger-ui-bundle.js.map",
    "/api-docs/swagger-ui.css/",
    "/api-docs//swagger-ui.css",
    "/api-docsx",
    "/openapi.json/x",
    "/health",
  ])("declines %s", async (path) => {
    expect((await request(path)).status).toBe(418);
  });

  it.each(["POST", "PUT", "DELETE"])("declines %s /api-docs", async (method) => {
    expect((await request("/api-docs", method)).status).toBe(418);
  });
});

describe("createApiDocsHandler over HTTP/2", () => {
  const server = http2.createServer();
  serve(server);
  let client: http2.ClientHttp2Session;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("answers the bundle through the compatibility API", async () => {
    const { status, type, length } = await new Promise<{ status: number; type: string; length: number }>((resolve, reject) => {
      const stream = client.request({ ":path": "/api-docs/swagger-ui-bundle.js" });
      let status = 0;
      let type = "";
      let length = 0;
      stream.on("response", (h) => { status = Number(h[":status"]); type = String(h["content-type"]); });
      stream.on("data", (c: Buffer) => { length += c.length; });
      stream.on("end", () => resolve({ status, type, length }));
      stream.on("error", reject);
    });
    expect(status).toBe(200);
    expect(type).toBe("text/javascript; charset=utf-8");
    expect(length).toBe(dist("swagger-ui-bundle.js").length);
  });
});

describe("createApiDocsHandler with a document function", () => {
  /** GET /openapi.json through the handler with a recording response. */
  const get = (handler: ReturnType<typeof createApiDocsHandler>) => {
    const reply: { headers: Record<string, string>; body: string } = { headers: {}, body: "" };
    const res = { writeHead: (_: number, h: Record<string, string>) => { reply.headers = h; }, end: (b?: Buffer) => { reply.body = String(b ?? ""); } };
    handler({ method: "GET", url: "/openapi.json", headers: {} } as never, res as never);
    return reply;
  };

  it("serves what the function returns, serialized again only when it returns another document", () => {
    let doc = { openapi: "3.1.0", info: { title: "v1" } };
    let calls = 0;
    const handler = createApiDocsHandler({ document: () => (calls++, doc) });
    const first = get(handler);
    expect([JSON.parse(first.body), get(handler).headers.etag, calls]).toEqual([doc, first.headers.etag, 2]);
    doc = { openapi: "3.1.0", info: { title: "v2" } };
    const second = get(handler);
    expect(JSON.parse(second.body)).toEqual(doc);
    expect(second.headers.etag).not.toBe(first.headers.etag);
  });
});

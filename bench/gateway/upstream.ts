/**
 * The upstream of the gateway benchmark, in a process of its own: a grpc-js
 * server (lib/grpc/server.ts, as every service serves) with doubles of the
 * RPCs the gateway uses — ProjectService.GetProject answering a fixed
 * project, and the internal streams a gateway follows (route configs, key
 * events, revoked tokens) held open, IngestLogStream acknowledging access-log
 * records — and a node:http server answering the same project as JSON on
 * `GET /api/v1/projects/{id}` for the bare proxy.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createServiceImplSpec, type HandlerContext } from "@connectrpc/connect";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService, RouteEventKind } from "../../gen/mesh/project/v1/project_pb.js";
import { createGrpcServer } from "../../lib/grpc/server.js";
import { serveChild } from "./child.js";
import { projectJson, projectMessage } from "./fixture.js";

/** What the upstream reports when ready. */
export interface UpstreamInfo {
  readonly grpcAddress: string;
  readonly httpPort: number;
}

/** Calls served so far. */
export interface UpstreamCounts {
  readonly getProject: number;
  readonly http: number;
  readonly logRecords: number;
}

const counts = { getProject: 0, http: 0, logRecords: 0 };

/** Resolves when the call ends (the gateway cancels it, or the server shuts down). */
const ended = (ctx: HandlerContext) => new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));

const server = createGrpcServer({
  services: [
    createServiceImplSpec<typeof ProjectService>(ProjectService, {
      getProject(req) {
        counts.getProject++;
        return { project: projectMessage(req.id) };
      },
      async *watchRoutes(_req, ctx) {
        yield { event: { version: 1n, kind: RouteEventKind.SNAPSHOT, routes: [] } };
        await ended(ctx);
      },
      async *watchKeyEvents(_req, ctx) {
        await ended(ctx);
      },
    }),
    createServiceImplSpec<typeof AuthService>(AuthService, {
      async *watchRevokedTokens(_req, ctx) {
        await ended(ctx);
      },
    }),
    createServiceImplSpec<typeof LoggingService>(LoggingService, {
      async ingestLogStream(messages) {
        let ingested = 0;
        for await (const m of messages) ingested += m.logs.length;
        counts.logRecords += ingested;
        return { ingested, duplicates: 0 };
      },
    }),
  ],
});
const grpcPort = await server.listen("127.0.0.1", 0);

const PREFIX = "/api/v1/projects/";
const web = http.createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0]!;
  if (req.method !== "GET" || !path.startsWith(PREFIX) || path.length === PREFIX.length || path.indexOf("/", PREFIX.length) >= 0) {
    res.writeHead(404, { "content-type": "application/json; charset=utf-8" });
    res.end('{"error":"NOT_FOUND"}');
    return;
  }
  counts.http++;
  const body = JSON.stringify(projectJson(decodeURIComponent(path.slice(PREFIX.length))));
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
web.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));

serveChild({ grpcAddress: `127.0.0.1:${grpcPort}`, httpPort: (web.address() as AddressInfo).port } satisfies UpstreamInfo,
  { counts: (): UpstreamCounts => ({ ...counts }) },
  async () => {
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
    await server.shutdown(1_000);
  });

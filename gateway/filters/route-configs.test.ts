import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ProjectService, RouteConfigSchema, RouteEventKind, RouteEventSchema,
  type RouteEvent, type WatchRoutesRequest,
} from "../../gen/mesh/project/v1/project_pb.js";
import { watchRouteConfigs, type RouteConfigs } from "./route-configs.js";

const route = (o: MessageInitShape<typeof RouteConfigSchema>) =>
  create(RouteConfigSchema, { projectId: "p1", method: "GET", path: "/api/v1/logs", service: "logging", active: true, ...o });
const snapshot = (version: bigint, routes: ReturnType<typeof route>[]) => create(RouteEventSchema, { version, kind: RouteEventKind.SNAPSHOT, routes });
const upserted = (version: bigint, r: ReturnType<typeof route>) => create(RouteEventSchema, { version, kind: RouteEventKind.UPSERTED, route: r });
const deleted = (version: bigint, routeId: string) => create(RouteEventSchema, { version, kind: RouteEventKind.DELETED, routeId });

/**
 * WatchRoutes whose events the test pushes: each `push` reaches the open
 * stream; `breakStream` fails it; `hold` keeps the next opens waiting.
 */
function projectService() {
  type Item = { event: RouteEvent } | { fail: ConnectError };
  const queue: Item[] = [];
  let wake: (() => void) | undefined;
  const svc = {
    requests: [] as bigint[],
    held: undefined as Promise<void> | undefined,
    push(...events: RouteEvent[]) { queue.push(...events.map((event) => ({ event }))); wake?.(); },
    breakStream() { queue.push({ fail: new ConnectError("project service restarting", Code.Unavailable) }); wake?.(); },
  };
  const transport = createRouterTransport((router) => router.service(ProjectService, {
    async *watchRoutes(req: WatchRoutesRequest, ctx: HandlerContext) {
      svc.requests.push(req.afterVersion);
      await svc.held;
      for (;;) {
        const item = queue.shift();
        if (item === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            ctx.signal.addEventListener("abort", () => resolve(), { once: true });
          });
          if (ctx.signal.aborted) return;
          continue;
        }
        if ("fail" in item) throw item.fail;
        yield { event: item.event };
      }
    },
  }));
  return { svc, transport };
}

let watchers: RouteConfigs[] = [];
afterEach(() => {
  for (const w of watchers) w.close();
  watchers = [];
});

function setup() {
  const { svc, transport } = projectService();
  const logger = { warn: vi.fn(), info: vi.fn(), debug: vi.fn(), error: vi.fn() };
  const configs = watchRouteConfigs(transport, logger as unknown as Logger);
  watchers.push(configs);
  return { svc, configs, logger };
}

/** Polls until the pushed events are applied (every step of these tests changes what `probe` answers). */
const settled = (probe: () => unknown, expected: unknown) => vi.waitFor(() => expect(probe()).toEqual(expected));

describe("route configs", () => {
  it("serves the snapshot's configs by project, verb and template", async () => {
    const { svc, configs } = setup();
    svc.push(snapshot(5n, [
      route({ id: "r1", rateLimit: 7, cacheTtlSeconds: 30 }),
      route({ id: "r2", projectId: "p2", rateLimit: 1 }),
      route({ id: "r3", method: "POST", path: "/api/v1/projects", cacheTtlSeconds: 0 }),
    ]));
    await vi.waitFor(() => expect(configs.lookup("p1", "GET", "/api/v1/logs")).toEqual({ rateLimit: 7, cacheTtlSeconds: 30 }));
    expect(configs.lookup("p1", "get", "/api/v1/logs")).toEqual({ rateLimit: 7, cacheTtlSeconds: 30 });
    expect(configs.lookup("p2", "GET", "/api/v1/logs")).toEqual({ rateLimit: 1 });
    expect(configs.lookup("p1", "POST", "/api/v1/projects")).toEqual({ cacheTtlSeconds: 0 });
    expect(configs.lookup("p3", "GET", "/api/v1/logs")).toBeUndefined();
    expect(configs.lookup("p1", "POST", "/api/v1/logs")).toBeUndefined();
    expect(configs.lookup("p1", "GET", "/api/v1/logs/errors")).toBeUndefined();
  });

  it("applies upserts, deactivations and deletions", async () => {
    const { svc, configs } = setup();
    const probe = () => [configs.lookup("p1", "GET", "/api/v1/logs"), configs.lookup("p1", "GET", "/api/v1/logs/errors")];
    svc.push(snapshot(1n, [route({ id: "r1", rateLimit: 7 })]));
    await settled(probe, [{ rateLimit: 7 }, undefined]);
    svc.push(upserted(2n, route({ id: "r1", rateLimit: 9 })), upserted(3n, route({ id: "r2", path: "/api/v1/logs/errors", rateLimit: 2 })));
    await settled(probe, [{ rateLimit: 9 }, { rateLimit: 2 }]);
    svc.push(upserted(4n, route({ id: "r1", rateLimit: 9, active: false })));
    await settled(probe, [undefined, { rateLimit: 2 }]);
    svc.push(deleted(5n, "r2"));
    await settled(probe, [undefined, undefined]);
    svc.push(upserted(6n, route({ id: "r1", path: "/api/v1/logs/errors", rateLimit: 3 }))); // a config moved to another route
    await settled(probe, [undefined, { rateLimit: 3 }]);
  });

  it("replaces everything with a later snapshot", async () => {
    const { svc, configs } = setup();
    const probe = () => [configs.lookup("p1", "GET", "/api/v1/logs"), configs.lookup("p2", "GET", "/api/v1/logs")];
    svc.push(snapshot(1n, [route({ id: "r1", rateLimit: 7 })]), upserted(2n, route({ id: "r2", projectId: "p2", rateLimit: 5 })));
    await settled(probe, [{ rateLimit: 7 }, { rateLimit: 5 }]);
    svc.push(snapshot(3n, [route({ id: "r3", projectId: "p2", rateLimit: 6 })]));
    await settled(probe, [undefined, { rateLimit: 6 }]);
  });

  it("keeps serving the last good set while the stream is down, and resumes after the last version", async () => {
    const { svc, configs, logger } = setup();
    svc.push(snapshot(5n, [route({ id: "r1", rateLimit: 7 })]), upserted(6n, route({ id: "r2", projectId: "p2", rateLimit: 5 })));
    const probe = () => [configs.lookup("p1", "GET", "/api/v1/logs"), configs.lookup("p2", "GET", "/api/v1/logs")];
    await settled(probe, [{ rateLimit: 7 }, { rateLimit: 5 }]);
    let restart!: () => void;
    svc.held = new Promise((resolve) => { restart = resolve; });
    svc.breakStream();
    await vi.waitFor(() => expect(svc.requests).toEqual([0n, 6n]));
    expect(probe()).toEqual([{ rateLimit: 7 }, { rateLimit: 5 }]); // down: the last good set serves
    expect(logger.warn).toHaveBeenCalledTimes(1);
    restart();
    svc.push(deleted(7n, "r1"));
    await settled(probe, [undefined, { rateLimit: 5 }]);
    expect(logger.info).toHaveBeenCalledWith(expect.anything(), "watch resumed");
  });
});

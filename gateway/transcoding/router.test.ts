import { describe, expect, it } from "vitest";
import { bindingsOf, type HttpBinding } from "./bindings.js";
import { createRouter, RouteConflictError, type Router } from "./router.js";
import { allServices, canonical, meshServices, serviceWithRules } from "./test-support.js";

const router = createRouter(bindingsOf(allServices));

/** "Service.Method vars" for a match, "405 A,B" for a wrong verb, "404" for no route. */
function route(r: Router, verb: string, raw: string): string {
  const m = r.match(verb, canonical(raw));
  if (m === undefined) return "404";
  if (m.kind === "method_not_allowed") return `405 ${m.allowed.join(",")}`;
  return `${m.binding.method.parent.name}.${m.binding.method.name} ${JSON.stringify(m.vars)}`;
}

describe("createRouter: the mesh's routes", () => {
  it.each([
    ["GET", "/api/v1/projects/p1", 'ProjectService.GetProject {"id":"p1"}'],
    ["PUT", "/api/v1/projects/p1", 'ProjectService.ReplaceProject {"id":"p1"}'],
    ["PATCH", "/api/v1/projects/p1", 'ProjectService.UpdateProject {"id":"p1"}'],
    ["DELETE", "/api/v1/projects/p1", 'ProjectService.DeleteProject {"id":"p1"}'],
    ["GET", "/api/v1/projects", "ProjectService.ListProjects {}"],
    ["POST", "/api/v1/projects", "ProjectService.CreateProject {}"],
    ["GET", "/api/v1/projects/p1/", 'ProjectService.GetProject {"id":"p1"}'],
    ["GET", "/api/v1/projects/%70%31", 'ProjectService.GetProject {"id":"p1"}'],
    ["GET", "/api/v1/projects/p1/keys", 'ProjectService.ListApiKeys {"project_id":"p1"}'],
    // An encoded slash is part of the id: it cannot reach the keys route.
    ["GET", "/api/v1/projects/p1%2Fkeys", 'ProjectService.GetProject {"id":"p1/keys"}'],
    ["DELETE", "/api/v1/keys/k1", 'ProjectService.RevokeApiKey {"id":"k1"}'],
    ["GET", "/api/v1/logs:tail", "LoggingService.TailLogs {}"],
    ["GET", "/api/v1/logs%3Atail", "LoggingService.TailLogs {}"],
    ["GET", "/api/v1/logs", "LoggingService.QueryLogs {}"],
    ["POST", "/api/v1/logs", "LoggingService.IngestLog {}"],
    // The literal route wins over the template, as logging.proto promises.
    ["GET", "/api/v1/logs/errors", "LoggingService.ListErrorLogs {}"],
    ["GET", "/api/v1/logs/req-1", 'LoggingService.GetLog {"request_id":"req-1"}'],
    ["POST", "/api/v1/logs/batch", "LoggingService.IngestLogBatch {}"],
    // Precedence is per verb: no GET is declared on /logs/batch, so the template serves it.
    ["GET", "/api/v1/logs/batch", 'LoggingService.GetLog {"request_id":"batch"}'],
    ["GET", "/api/v1/alerts/rules/r1", 'AnalyticsService.GetAlertRule {"id":"r1"}'],
    ["GET", "/api/v1/alerts/events:watch", "AnalyticsService.WatchAlertEvents {}"],
    ["GET", "/api/v1/alerts/events", "AnalyticsService.ListAlertEvents {}"],
    ["PUT", "/api/v1/alerts/events/e1/acknowledge", 'AnalyticsService.AcknowledgeAlertEvent {"id":"e1"}'],
    ["POST", "/api/v1/auth/users/u%201/active", 'AuthService.SetUserActive {"user_id":"u 1"}'],
    ["GET", "/.well-known/jwks.json", "AuthService.GetJwks {}"],
  ])("%s %s → %s", (verb, raw, expected) => {
    expect(route(router, verb, raw)).toBe(expected);
  });

  it.each([
    ["DELETE", "/api/v1/projects", "405 GET,POST"],
    ["POST", "/api/v1/projects/p1", "405 DELETE,GET,PATCH,PUT"],
    ["POST", "/api/v1/logs:tail", "405 GET"],
    ["get", "/api/v1/projects", "405 GET,POST"],
    ["GET", "/api/v1/alerts/events/e1/acknowledge", "405 PUT"],
  ])("%s %s → %s (path known, verb not)", (verb, raw, expected) => {
    expect(route(router, verb, raw)).toBe(expected);
  });

  it.each([
    ["GET", "/"],
    ["GET", "/api/v1/nope"],
    ["GET", "/api/v1/projects/p1/keys/k1"],
    ["GET", "/api/v1/logs:nope"],
    ["GET", "/api/v1/projects:tail"],
    ["GET", "/API/V1/PROJECTS"],
    ["GET", "/api/v1/projects/p1/extra/deep"],
  ])("%s %s → 404", (verb, raw) => {
    expect(route(router, verb, raw)).toBe("404");
  });
});

describe("createRouter: the test service's routes", () => {
  it.each([
    ["GET", "/v1/projects/p1/items/i1", 'TranscodingService.GetItem {"name":"projects/p1/items/i1"}'],
    ["GET", "/v1/projects/p1/items/i%2F1", 'TranscodingService.GetItem {"name":"projects/p1/items/i%2F1"}'],
    ["PATCH", "/v1/projects/p1/items/i1", 'TranscodingService.UpdateItem {"item.name":"projects/p1/items/i1"}'],
    ["DELETE", "/v1/projects/p1/items/i1", 'TranscodingService.DeleteItem {"name":"projects/p1/items/i1"}'],
    ["GET", "/v1/projects/p1/items:tail", 'TranscodingService.TailItems {"parent":"projects/p1"}'],
    ["GET", "/v1/projects/p1/items", 'TranscodingService.SearchItems {"parent":"projects/p1"}'],
    ["POST", "/v1/projects/p1/items", 'TranscodingService.CreateItem {"parent":"projects/p1"}'],
    ["GET", "/v1/items:search", "TranscodingService.SearchItems {}"],
    ["SEARCH", "/v1/items", "TranscodingService.SearchItems {}"],
    ["POST", "/v1/items", "TranscodingService.CreateItem {}"],
    ["GET", "/v1/files/a/b%20c/d.txt", 'TranscodingService.GetFile {"path":"a/b c/d.txt"}'],
    ["GET", "/v1/files/readme", 'TranscodingService.GetFile {"path":"readme"}'],
    ["GET", "/v1/files", 'TranscodingService.GetFile {"path":""}'],
    // `{folder}` (one segment) beats `**`; with more segments only `**` matches.
    ["GET", "/v1/files/docs/index", 'TranscodingService.GetFolderIndex {"folder":"docs"}'],
    ["GET", "/v1/files/a/docs/index", 'TranscodingService.GetFile {"path":"a/docs/index"}'],
  ])("%s %s → %s", (verb, raw, expected) => {
    expect(route(router, verb, raw)).toBe(expected);
  });

  it.each([
    ["GET", "/v1/items", "405 POST,SEARCH"],
    ["PUT", "/v1/projects/p1/items/i1", "405 DELETE,GET,PATCH"],
  ])("%s %s → %s", (verb, raw, expected) => {
    expect(route(router, verb, raw)).toBe(expected);
  });

  it.each([
    ["GET", "/v1/projects/p1/items/i1/x"],
    ["GET", "/v1/projects/p1:tail"],
    ["GET", "/v1/orgs/o1/items/i1"],
  ])("%s %s → 404", (verb, raw) => {
    expect(route(router, verb, raw)).toBe("404");
  });
});

describe("createRouter precedence", () => {
  const overlapping = bindingsOf([
    serviceWithRules({
      GetFile: { get: "/v1/{path=**}" },
      GetFolderIndex: { get: "/v1/{folder}/index" },
      GetItem: { get: "/v1/items/{name}" },
      SearchItems: { get: "/v1/items/special" },
      TailItems: { get: "/v1/items/{parent}:tail" },
      DeleteItem: { get: "/v1/{name=*/*}" },
    }),
  ]);
  const cases = [
    ["/v1/items/special", "SearchItems"],
    ["/v1/items/other", "GetItem"],
    ["/v1/items/x:tail", "TailItems"],
    ["/v1/items/index", "GetItem"],
    ["/v1/docs/index", "GetFolderIndex"],
    ["/v1/docs/other", "DeleteItem"],
    ["/v1/a/b/c", "GetFile"],
    ["/v1/a", "GetFile"],
  ] as const;

  it.each(cases)("routes %s to %s: literal beats *, * beats **, a custom verb beats none", (raw, method) => {
    const m = createRouter(overlapping).match("GET", canonical(raw));
    expect(m?.kind === "match" && m.binding.method.name).toBe(method);
  });

  it("answers the same whatever the order the bindings are given in", () => {
    const orders: HttpBinding[][] = [overlapping, [...overlapping].reverse(), [...overlapping.slice(3), ...overlapping.slice(0, 3)]];
    for (const order of orders) {
      const r = createRouter(order);
      expect(cases.map(([raw]) => route(r, "GET", raw))).toEqual(cases.map(([raw]) => route(createRouter(overlapping), "GET", raw)));
    }
  });
});

describe("createRouter conflicts", () => {
  function conflictsOf(bindings: readonly HttpBinding[]): readonly string[] {
    try {
      createRouter(bindings);
    } catch (e) {
      if (e instanceof RouteConflictError) return e.conflicts;
      throw e;
    }
    throw new Error("expected RouteConflictError");
  }

  it.each([
    ["variables with different names", { GetItem: { get: "/v1/items/{name}" }, DeleteItem: { get: "/v1/items/{etag}" } }, "GET /v1/items/{*}"],
    ["{x} and {x=*}", { GetItem: { get: "/v1/items/{name}" }, DeleteItem: { get: "/v1/items/{name=*}" } }, "GET /v1/items/{*}"],
    ["a bare * and a variable", { GetItem: { get: "/v1/items/*" }, DeleteItem: { get: "/v1/items/{name}" } }, "GET /v1/items/{*}"],
    ["** under different names", { GetFile: { get: "/v1/{path=**}" }, GetItem: { get: "/v1/{name=**}" } }, "GET /v1/{**}"],
    ["literals spelled differently", { GetItem: { get: "/v1/%7euser" }, DeleteItem: { get: "/v1/~user" } }, "GET /v1/~user"],
    ["the same custom verb", { GetItem: { get: "/v1/{name}:tail" }, TailItems: { get: "/v1/{parent}:tail" } }, "GET /v1/{*}:tail"],
    ["an additional binding of the same method", { GetItem: { get: "/v1/a/{name}", additionalBindings: [{ get: "/v1/a/{name}" }] } }, "GET /v1/a/{*}"],
  ])("refuses %s", (_, rules, shape) => {
    const conflicts = conflictsOf(bindingsOf([serviceWithRules(rules)]));
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toContain(`are both ${shape}`);
    expect(conflicts[0]).toMatch(/^mesh\.testing\.v1\.TranscodingService\.\w+ \(GET .*\) and mesh\.testing\.v1\.TranscodingService\.\w+ \(GET .*\)/);
  });

  it.each([
    ["different verbs", { GetItem: { get: "/v1/items/{name}" }, DeleteItem: { delete: "/v1/items/{name}" } }],
    ["different custom verbs", { GetItem: { get: "/v1/{name}:a" }, TailItems: { get: "/v1/{parent}:b" } }],
    ["a custom verb and none", { GetItem: { get: "/v1/{name}" }, TailItems: { get: "/v1/{parent}:tail" } }],
    ["* and **", { GetItem: { get: "/v1/{name}" }, GetFile: { get: "/v1/{path=**}" } }],
  ])("accepts %s on one path", (_, rules) => {
    expect(() => createRouter(bindingsOf([serviceWithRules(rules)]))).not.toThrow();
  });

  it("lists every conflict", () => {
    const mesh = bindingsOf(meshServices);
    expect(conflictsOf([...mesh, ...mesh])).toHaveLength(mesh.length);
  });
});

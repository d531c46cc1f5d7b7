import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/logger.js";
import type { Cluster } from "../clusters/cluster.js";
import { loadGatewayConfig } from "../config/load.js";
import { canonical, meshServices } from "../transcoding/test-support.js";
import { startGatewaySchema, type GatewaySchema } from "./gateway-schema.js";
import { filesOf, GREETER, Type, type FileSpec } from "./test-support.js";

const CONFIG = `
clusters:
  - { name: greeter, services: [demo.greeter.v1.Greeter], endpoints: ["127.0.0.1:1"], reflection: { refreshInterval: 3600s } }
  - { name: echo, services: [demo.echo.v1.Echo], endpoints: ["127.0.0.1:2"], reflection: { refreshInterval: 3600s } }
filters: [{ router: {} }]
`;

/** Echo, served by the second cluster: one public route of its own. */
const ECHO: FileSpec = {
  name: "demo/echo/v1/echo.proto", package: "demo.echo.v1", service: "Echo",
  messages: { EchoRequest: [["text", 1, Type.STRING]], EchoResponse: [["text", 1, Type.STRING]] },
  methods: [{ name: "Echo", input: "EchoRequest", output: "EchoResponse", http: { pattern: { case: "post", value: "/api/v1/echo" }, body: "*" } }],
};

describe("startGatewaySchema", () => {
  /** What each upstream's reflection answers now, by service: a file spec, or the error it fails with. */
  const answers = new Map<string, FileSpec | ConnectError>();
  const logs: { level: number; msg: string; cluster?: string; problems?: string[] }[] = [];
  let schema: GatewaySchema;
  let changes = 0;

  beforeEach(async () => {
    answers.clear();
    logs.length = 0;
    changes = 0;
    answers.set("demo.greeter.v1.Greeter", new ConnectError("connection refused", Code.Unavailable));
    answers.set("demo.echo.v1.Echo", ECHO);
    const fake = { transport: {} as Transport } as Cluster;
    schema = await startGatewaySchema({
      cfg: loadGatewayConfig({ text: CONFIG, env: {} }),
      clusters: new Map([["greeter", fake], ["echo", fake]]),
      builtin: meshServices,
      logger: createLogger({ service: "gateway", level: "debug", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } }),
      openApiInfo: { title: "test", version: "0" },
      fetch: async (_transport, services) => {
        const answer = answers.get(services[0]!);
        if (answer === undefined || answer instanceof ConnectError) throw answer ?? new ConnectError("no answer", Code.Internal);
        return filesOf(answer); // fresh copies: building a schema changes its files
      },
    });
    schema.onChange(() => changes++);
  });
  afterEach(() => schema.close());

  const routed = (verb: string, path: string) => {
    const m = schema.router.match(verb, canonical(path));
    return m?.kind === "match" ? `${m.binding.method.parent.name}.${m.binding.method.name}` : undefined;
  };
  const warnings = (cluster: string) => logs.filter((l) => l.level === 40 && l.cluster === cluster);

  it("starts without the routes of an upstream that does not answer, and says so", () => {
    expect(routed("GET", "/api/v1/greeter/ada")).toBeUndefined();
    expect(routed("POST", "/api/v1/echo")).toBe("Echo.Echo");
    expect(schema.pendingCluster("demo.greeter.v1.Greeter")).toBe("greeter");
    const err = schema.noRoute("GET", "/api/v1/greeter/ada");
    expect([err.code, err.rawMessage]).toEqual([Code.Unavailable, expect.stringContaining("the routes of cluster greeter are not loaded")]);
    expect(warnings("greeter").map((l) => l.msg)).toEqual(["server reflection of cluster greeter failed; its routes are not served until it answers"]);
  });

  it("logs the same failure once, then at debug", async () => {
    await schema.refresh();
    expect(warnings("greeter")).toHaveLength(1);
    expect(logs.filter((l) => l.level === 20 && l.cluster === "greeter")).toHaveLength(1);
  });

  it("serves the routes once the upstream answers, and tells listeners", async () => {
    answers.set("demo.greeter.v1.Greeter", GREETER);
    await schema.refresh();
    expect([routed("GET", "/api/v1/greeter/ada"), changes, schema.pendingCluster("demo.greeter.v1.Greeter")]).toEqual(["Greeter.SayHello", 1, undefined]);
    expect(schema.noRoute("GET", "/nowhere").code).toBe(Code.NotFound);
    expect(schema.services().map((s) => s.typeName)).toEqual([...meshServices.map((s) => s.typeName), "demo.greeter.v1.Greeter", "demo.echo.v1.Echo"]);
    expect(Object.keys(schema.openApi().paths)).toEqual(expect.arrayContaining(["/api/v1/greeter/{name}", "/api/v1/greetings", "/api/v1/echo"]));
  });

  it("changes nothing when the schema is the same", async () => {
    await schema.refresh();
    const doc = schema.openApi();
    await schema.refresh();
    expect([changes, schema.openApi()]).toEqual([0, doc]);
  });

  it("refuses a breaking change, keeps the last good routes and logs why", async () => {
    answers.set("demo.greeter.v1.Greeter", GREETER);
    await schema.refresh();
    answers.set("demo.greeter.v1.Greeter", { ...GREETER, methods: GREETER.methods.slice(0, 1) });
    await schema.refresh();
    await schema.refresh();
    expect([routed("POST", "/api/v1/greetings"), changes]).toEqual(["Greeter.CreateGreeting", 1]);
    expect(warnings("greeter").slice(1)).toEqual([expect.objectContaining({
      msg: "refused the schema of cluster greeter from server reflection; kept its last good schema",
      problems: ["POST /api/v1/greetings (demo.greeter.v1.Greeter/CreateGreeting) was removed"],
    })]);
  });

  it("applies a compatible change without a restart", async () => {
    answers.set("demo.greeter.v1.Greeter", GREETER);
    await schema.refresh();
    answers.set("demo.greeter.v1.Greeter", { ...GREETER, methods: [...GREETER.methods,
      { name: "SayGoodbye", input: "SayHelloRequest", output: "SayHelloResponse", http: { pattern: { case: "get", value: "/api/v1/greeter/{name}:goodbye" } } }] });
    await schema.refresh();
    expect([routed("GET", "/api/v1/greeter/ada:goodbye"), routed("GET", "/api/v1/greeter/ada"), changes]).toEqual(["Greeter.SayGoodbye", "Greeter.SayHello", 2]);
  });

  it("refuses routes that overlap a built-in service's or another cluster's", async () => {
    const squatting = (path: string): FileSpec => ({ ...GREETER, methods: [{ ...GREETER.methods[0]!, http: { pattern: { case: "post", value: path }, body: "*" } }] });
    answers.set("demo.greeter.v1.Greeter", squatting("/api/v1/auth/login"));
    await schema.refresh();
    answers.set("demo.greeter.v1.Greeter", squatting("/api/v1/echo"));
    await schema.refresh();
    expect([routed("POST", "/api/v1/auth/login"), routed("POST", "/api/v1/echo"), changes]).toEqual(["AuthService.Login", "Echo.Echo", 0]);
    expect(warnings("greeter").slice(1).map((l) => l.problems)).toEqual([
      ["POST /api/v1/auth/login (demo.greeter.v1.Greeter/SayHello) overlaps POST /api/v1/auth/login (mesh.auth.v1.AuthService/Login)"],
      ["POST /api/v1/echo (demo.greeter.v1.Greeter/SayHello) overlaps POST /api/v1/echo (demo.echo.v1.Echo/Echo)"],
    ]);
  });
});

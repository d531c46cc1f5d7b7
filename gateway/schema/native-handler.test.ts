import http from "node:http";
import type { AddressInfo } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/logger.js";
import type { GatewaySchema } from "./gateway-schema.js";
import { createSchemaNativeHandler } from "./native-handler.js";
import { GREETER, schemaOf } from "./test-support.js";

const greeter = schemaOf(GREETER).services[0]!;

describe("createSchemaNativeHandler", () => {
  let services: readonly DescService[] = [];
  let pending: string | undefined = "greeter";
  let changed = () => {};
  const schema = {
    services: () => services,
    pendingCluster: (service: string) => (service === greeter.typeName ? pending : undefined),
    onChange: (listener: () => void) => { changed = listener; },
  } as unknown as GatewaySchema;
  const handler = createSchemaNativeHandler(schema, {
    clusterFor: () => undefined, admit: async () => new Headers(), logger: createLogger({ service: "test", level: "silent" }),
  });
  // 418: left to REST.
  const server = http.createServer((req, res) => {
    if (handler.handle(req, res, { requestId: "req-1", responseHeaders: new Headers({ "x-cors": "yes" }) })) return;
    res.writeHead(418).end();
  });
  let base = "";
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = (path: string, contentType: string) => fetch(`${base}${path}`, { method: "POST", headers: { "content-type": contentType }, body: "{}" });

  it("answers a Connect call to a service still loading with 503 unavailable, saying why", async () => {
    const res = await post("/demo.greeter.v1.Greeter/SayHello", "application/json");
    expect([res.status, res.headers.get("x-request-id"), res.headers.get("x-cors")]).toEqual([503, "req-1", "yes"]);
    expect(await res.json()).toEqual({ code: "unavailable", message: expect.stringContaining("cluster greeter has not answered server reflection") });
  });

  it("answers gRPC-Web with a trailers-only UNAVAILABLE", async () => {
    const res = await post("/demo.greeter.v1.Greeter/SayHello", "application/grpc-web+proto");
    expect([res.status, res.headers.get("grpc-status"), res.headers.get("grpc-message")]).toEqual([200, "14", expect.stringContaining("greeter")]);
  });

  it("leaves other unknown paths to REST", async () => {
    expect((await post("/demo.other.v1.Other/Call", "application/json")).status).toBe(418);
  });

  it("serves a service once the schema has it", async () => {
    pending = undefined;
    expect((await post("/demo.greeter.v1.Greeter/SayHello", "application/json")).status).toBe(418);
    services = [greeter];
    changed();
    const res = await post("/demo.greeter.v1.Greeter/SayHello", "application/json");
    // Taken by the forwarding handler: no cluster serves it in this test.
    expect([res.status, ((await res.json()) as { message: string }).message]).toEqual([503, "no cluster serves demo.greeter.v1.Greeter"]);
  });
});

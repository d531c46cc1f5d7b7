import { getOption, toJson, type DescService } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_SERVICES } from "../../gateway/app.js";
import { http } from "../../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../../gen/google/api/http_pb.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { MethodPolicySchema, policy } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { startGatewayWithServices, type GatewayWithServices } from "../support/gateway-with-services.js";
import { healthCheck } from "../support/grpc-generic.js";
import { createReflectionClient, ReflectionError, type ReflectionClient } from "../support/reflection-client.js";

// Every port of the mesh (each service's and the gateway's) described over gRPC server reflection
// by a generic client: what grpcurl, Postman or another language's reflection client sees.
let mesh: GatewayWithServices;
const clients: ReflectionClient[] = [];

beforeAll(async () => {
  mesh = await startGatewayWithServices();
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await mesh?.stop();
});

/** Each port and the services it serves (besides health and reflection). */
const ports: { name: string; address: () => string; services: readonly DescService[] }[] = [
  { name: "auth", address: () => mesh.auth.address, services: [AuthService] },
  { name: "project", address: () => mesh.project.address, services: [ProjectService] },
  { name: "logging", address: () => mesh.analytics.logging.address, services: [LoggingService] },
  { name: "analytics", address: () => mesh.analytics.analytics.address, services: [AnalyticsService] },
  { name: "gateway", address: () => `127.0.0.1:${mesh.gateway.port}`, services: GATEWAY_SERVICES },
];
const served = [Health, v1.ServerReflection, v1alpha.ServerReflection];

const reflect = (address: string, opts: Parameters<typeof createReflectionClient>[1] = {}) => {
  const c = createReflectionClient(address, opts);
  clients.push(c);
  return c;
};

/** What a method looks like to a client: kind, types, and its google.api.http and gateway policy options. */
const shape = (s: DescService) => s.methods.map((m) => ({
  name: m.name, kind: m.methodKind, input: m.input.typeName, output: m.output.typeName,
  http: toJson(HttpRuleSchema, getOption(m, http)), policy: toJson(MethodPolicySchema, getOption(m, policy)),
}));

describe.each(ports)("reflection on the $name port", ({ address, services }) => {
  it.each(["v1", "v1alpha"] as const)("lists its services, grpc.health.v1 and reflection itself over grpc.reflection.%s", async (version) => {
    expect(await reflect(address(), { version }).listServices()).toEqual([...services, ...served].map((s) => s.typeName));
  });

  it.each(["v1", "v1alpha"] as const)("describes every listed service from reflection alone as proto/ declares it (%s)", async (version) => {
    const c = reflect(address(), { version });
    for (const expected of [...services, ...served]) {
      const { service, files } = await c.describe(expected.typeName);
      expect(shape(service), expected.typeName).toEqual(shape(expected));
      expect(files.map((f) => f.name)).toContain(expected.file.proto.name);
    }
    // The mesh's methods carry their REST bindings (internal ones none).
    const described = (await c.describe(services[0]!.typeName)).service;
    expect(described.methods.some((m) => getOption(m, http).pattern.case !== undefined)).toBe(true);
  });

  it("answers NOT_FOUND for an unknown symbol, file or extension, and the stream goes on", async () => {
    const c = reflect(address());
    await expect(c.fileContainingSymbol("mesh.nope.v1.NopeService")).rejects.toMatchObject({ code: Code.NotFound });
    await expect(c.fileByFilename("mesh/nope/v1/nope.proto")).rejects.toBeInstanceOf(ReflectionError);
    await expect(c.fileContainingExtension("google.protobuf.MethodOptions", 1)).rejects.toMatchObject({ code: Code.NotFound });
    expect((await c.fileContainingSymbol(`${services[0]!.typeName}.${services[0]!.methods[0]!.name}`))[0]?.name).toBe(services[0]!.file.proto.name);
    expect((await c.end()).code).toBe(0);
  });

  it("finds files by name and by extension, google.rpc's error details included", async () => {
    const c = reflect(address());
    expect((await c.fileByFilename("google/api/annotations.proto")).map((f) => f.name))
      .toEqual(["google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto"]);
    expect((await c.fileContainingExtension("google.protobuf.MethodOptions", http.number))[0]?.name).toBe("google/api/annotations.proto");
    expect(await c.allExtensionNumbersOfType("google.protobuf.MethodOptions")).toEqual(expect.arrayContaining([http.number, policy.number]));
    expect((await c.fileByFilename("google/rpc/error_details.proto"))[0]?.name).toBe("google/rpc/error_details.proto");
  });
});

describe("reflection and health on the gateway port", () => {
  it("answers reflection without credentials, echoing the request id, and counts the call in /stats", async () => {
    const c = reflect(`127.0.0.1:${mesh.gateway.port}`, { metadata: { "x-request-id": "reflect-e2e-1" } });
    await c.listServices();
    expect((await c.headers()).get("x-request-id")).toEqual(["reflect-e2e-1"]);
    expect((await c.end()).code).toBe(0);
    const stats = await (await fetch(`http://127.0.0.1:${mesh.gateway.adminPort}/stats`)).text();
    expect(stats).toMatch(/mesh_gateway_requests_total\{route="\/grpc\.reflection\.v1\.ServerReflection\/ServerReflectionInfo",method="POST",status="200"\} [1-9]/);
  });

  it("lets a client call a method with descriptors from reflection alone, as grpcurl does", async () => {
    const { service } = await reflect(`127.0.0.1:${mesh.gateway.port}`).describe("mesh.auth.v1.AuthService");
    const transport = createGrpcTransport({ address: `127.0.0.1:${mesh.gateway.port}` });
    try {
      // Untyped, as for any client that learnt the service at run time.
      const dynamic = createClient(service, transport) as unknown as { getJwks(req: object): Promise<{ keys: unknown[] }> };
      expect((await dynamic.getJwks({})).keys.length).toBeGreaterThan(0);
    } finally {
      transport.close();
    }
  });

  it("reports its own liveness over grpc.health.v1 to a generic client", async () => {
    expect(await healthCheck(`127.0.0.1:${mesh.gateway.port}`, "")).toBe("SERVING");
    await expect(healthCheck(`127.0.0.1:${mesh.gateway.port}`, "mesh.auth.v1.AuthService")).rejects.toMatchObject({ code: Code.NotFound });
  });
});

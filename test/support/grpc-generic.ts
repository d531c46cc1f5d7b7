import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";

// A generic gRPC client as third-party tools are: grpc-js plus protos loaded at
// run time with proto-loader, knowing nothing of the mesh's generated code.
const require = createRequire(import.meta.url);
const reflectionProto = join(dirname(require.resolve("@grpc/reflection/package.json")), "build/proto/grpc/reflection/v1/reflection.proto");

type Ctor = new (address: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const includeDirs = [join(import.meta.dirname, "../../proto"), dirname(require.resolve("google-proto-files/package.json"))];

function load(file: string, service: string): Ctor {
  const pkg = grpc.loadPackageDefinition(loadSync(file, { keepCase: true, longs: String, enums: String, defaults: true, includeDirs }));
  const parts = service.split(".");
  let node: unknown = pkg;
  for (const p of parts) node = (node as Record<string, unknown>)[p];
  return node as Ctor;
}

/** `grpc.health.v1.Health/Check` for `service` ("" = the whole server). */
export async function healthCheck(address: string, service: string): Promise<string> {
  const Health = load(healthProtoPath, "grpc.health.v1.Health");
  const client = new Health(address, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      client.Check!({ service }, (err: Error | null, res: { status: string }) => (err ? reject(err) : resolve(res.status)));
    });
  } finally {
    client.close();
  }
}

/** Lists the services a server exposes through `grpc.reflection.v1`. */
export async function reflectServices(address: string): Promise<string[]> {
  const res = await reflect(address, { list_services: "" });
  return (res.list_services_response as { service: { name: string }[] }).service.map((s) => s.name);
}

/** Names of the files `grpc.reflection.v1` returns for a symbol or a file name (with dependencies). */
export async function reflectFiles(address: string, request: { file_containing_symbol: string } | { file_by_filename: string }): Promise<string[]> {
  const res = await reflect(address, request);
  const files = (res.file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
  return files.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
}

async function reflect(address: string, request: object): Promise<Record<string, unknown>> {
  const Reflection = load(reflectionProto, "grpc.reflection.v1.ServerReflection");
  const client = new Reflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo!() as grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
      call.on("data", (msg) => { resolve(msg); call.end(); });
      call.on("error", reject);
      call.write(request);
    });
  } finally {
    client.close();
  }
}

/**
 * One unary call made the way any gRPC stack would: the service's `.proto`
 * from `proto/` loaded at run time, no generated code of the mesh involved.
 */
export async function callWithProto(address: string, protoFile: string, service: string, method: string,
  request: object, metadata: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const Service = load(protoFile, service);
  const client = new Service(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  try {
    return await new Promise((resolve, reject) => {
      client[method]!(request, md, { deadline: Date.now() + 10_000 },
        (err: Error | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res)));
    });
  } finally {
    client.close();
  }
}

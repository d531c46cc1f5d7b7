import { toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

/**
 * Registers `grpc.reflection.v1` and `v1alpha` describing `services` (with
 * every file they depend on) and `grpc.health.v1.Health`, so generic clients
 * (grpcurl, Postman, reflection clients) can list and call them.
 */
export function addReflection(server: Pick<grpc.Server, "addService">, services: readonly DescService[]): void {
  const files = new Map<string, Buffer>();
  const visit = (file: DescFile) => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  const health = loadSync(healthProtoPath, { keepCase: true });
  const pkg: PackageDefinition = { ...health };
  for (const s of services) {
    pkg[s.typeName] = { fileDescriptorProtos: [...files.values()] } as unknown as PackageDefinition[string];
  }
  new ReflectionService(pkg).addToServer(server);
}

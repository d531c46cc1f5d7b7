import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../../gen/google/rpc/status_pb.js";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { createReflectionIndex, type ReflectionIndex } from "./reflection-index.js";

/**
 * What a mesh process answers reflection from: `services`, `grpc.health.v1`
 * and reflection itself (listed and described), and `google.rpc.Status` with
 * the error details (described, not listed) so a client can decode
 * `grpc-status-details-bin` from reflection alone.
 */
export function reflectionIndexFor(services: readonly DescService[]): ReflectionIndex {
  return createReflectionIndex([...services, Health, v1.ServerReflection, v1alpha.ServerReflection],
    [file_google_rpc_status, file_google_rpc_error_details]);
}

/**
 * Registers `grpc.reflection.v1` and `v1alpha` on a grpc-js server, answering
 * from {@link reflectionIndexFor}(`services`): generic clients (grpcurl,
 * Postman, any language's reflection client) list and describe the services
 * from the very descriptors buf compiled, `google.api.http` options included.
 */
export function addReflection(server: Pick<grpc.Server, "addService">, services: readonly DescService[]): void {
  const index = reflectionIndexFor(services);
  server.addService(bidiDefinition(v1.ServerReflection, v1.ServerReflectionRequestSchema, v1.ServerReflectionResponseSchema),
    { ServerReflectionInfo: answerEach(index.answer) });
  server.addService(bidiDefinition(v1alpha.ServerReflection, v1alpha.ServerReflectionRequestSchema, v1alpha.ServerReflectionResponseSchema),
    { ServerReflectionInfo: answerEach(index.answerV1alpha) });
}

/** The grpc-js definition of `service`'s one bidi method, with protobuf-es codecs. */
function bidiDefinition<I extends DescMessage, O extends DescMessage>(service: DescService, input: I, output: O): grpc.ServiceDefinition {
  const method = service.methods[0]!;
  return {
    [method.name]: {
      path: `/${service.typeName}/${method.name}`,
      requestStream: true,
      responseStream: true,
      requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
      requestDeserialize: (b: Buffer) => fromBinary(input, b),
      responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
      originalName: method.name,
    },
  };
}

/** One response per request, in order; the stream ends when the client's does. */
function answerEach<I, O>(answer: (request: I) => O) {
  return (call: grpc.ServerDuplexStream<I, O>) => {
    call.on("data", (request: I) => call.write(answer(request)));
    call.on("end", () => call.end());
  };
}

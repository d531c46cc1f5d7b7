import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type ReflectionMethod = typeof v1.ServerReflection.method.serverReflectionInfo;
type Request = MessageInitShape<ReflectionMethod["input"]>;

/**
 * v1 first; v1alpha for upstreams that answer it UNIMPLEMENTED (grpcio-reflection
 * serves only v1alpha). v1alpha's messages are v1's field for field under
 * another package, so one conversation, typed as v1, serves both.
 */
const METHODS: readonly ReflectionMethod[] = [
  v1.ServerReflection.method.serverReflectionInfo,
  v1alpha.ServerReflection.method.serverReflectionInfo as unknown as ReflectionMethod,
];

export interface FetchDescriptorsOptions {
  /** Deadline of the whole conversation. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Files the caller already has (well-known types, google/api): not asked for, though kept if sent. */
  readonly known: (fileName: string) => boolean;
}

/**
 * Asks an upstream's server reflection for the files declaring `services` and
 * every file they import, transitively (except `known` ones), on one
 * `ServerReflectionInfo` stream so every answer comes from the same endpoint.
 * Answers the files by name. Throws the stream's ConnectError (UNAVAILABLE
 * when the upstream is down, UNIMPLEMENTED when it serves neither protocol
 * version), or NOT_FOUND naming a service or file the upstream does not know.
 */
export async function fetchFileDescriptors(transport: Transport, services: readonly string[], opts: FetchDescriptorsOptions): Promise<Map<string, FileDescriptorProto>> {
  for (const [i, method] of METHODS.entries()) {
    try {
      return await converse(transport, method, services, opts);
    } catch (err) {
      if (i === METHODS.length - 1 || ConnectError.from(err).code !== Code.Unimplemented) throw err;
    }
  }
  throw new Error("unreachable: METHODS is not empty");
}

async function converse(transport: Transport, method: ReflectionMethod, services: readonly string[], opts: FetchDescriptorsOptions): Promise<Map<string, FileDescriptorProto>> {
  const files = new Map<string, FileDescriptorProto>();
  const asked = new Set<string>();
  const requests = createQueue<Request>();
  // Queued before the stream opens: some servers send no headers before their first answer.
  for (const s of services) requests.push({ messageRequest: { case: "fileContainingSymbol", value: s } });
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  try {
    const res = await transport.stream(method, signal, opts.timeoutMs, undefined, requests);
    const replies = res.message[Symbol.asyncIterator]();
    let outstanding = services.length;
    while (outstanding > 0) {
      for (; outstanding > 0; outstanding--) absorb(await nextReply(replies), files);
      // The imports no answer included (servers may send a file without its imports): one more round.
      const missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d) && !asked.has(d) && !opts.known(d));
      for (const dep of new Set(missing)) {
        asked.add(dep);
        requests.push({ messageRequest: { case: "fileByFilename", value: dep } });
        outstanding++;
      }
    }
    // Ending the requests lets the server close the stream with OK rather than see it cancelled.
    requests.end();
    while (!(await replies.next()).done);
    return files;
  } finally {
    requests.end();
    controller.abort();
  }
}

async function nextReply(replies: AsyncIterator<v1.ServerReflectionResponse>): Promise<v1.ServerReflectionResponse> {
  const r = await replies.next();
  if (r.done) throw new ConnectError("the upstream ended its reflection stream before answering", Code.Unavailable);
  return r.value;
}

/** Adds the files of one answer; an error answer throws NOT_FOUND naming what was asked. */
function absorb(reply: v1.ServerReflectionResponse, files: Map<string, FileDescriptorProto>): void {
  const answer = reply.messageResponse;
  if (answer.case === "fileDescriptorResponse") {
    for (const bytes of answer.value.fileDescriptorProto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      files.set(file.name, file);
    }
    return;
  }
  const question = reply.originalRequest?.messageRequest;
  const what = question?.case === "fileContainingSymbol" ? `service ${question.value}` : question?.case === "fileByFilename" ? `file ${question.value}` : "request";
  const why = answer.case === "errorResponse" ? `${answer.value.errorMessage} (code ${answer.value.errorCode})` : `an answer of kind ${answer.case ?? "none"}`;
  throw new ConnectError(`the upstream's reflection does not describe ${what}: ${why}`, Code.NotFound);
}

/** An async iterable of requests the conversation pushes while the stream is open. */
function createQueue<T>() {
  const queued: T[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  return {
    push(item: T) {
      queued.push(item);
      poke();
    },
    end() {
      ended = true;
      poke();
    },
    async *[Symbol.asyncIterator](): AsyncIterator<T> {
      for (;;) {
        const item = queued.shift();
        if (item !== undefined) yield item;
        else if (ended) return;
        else await new Promise<void>((resolve) => { wake = resolve; });
      }
    },
  };
}

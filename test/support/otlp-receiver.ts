import http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import {
  ExportTraceServiceRequestSchema, ExportTraceServiceResponseSchema,
} from "../gen/opentelemetry/proto/collector/trace/v1/trace_service_pb.js";
import type { AnyValue, KeyValue } from "../gen/opentelemetry/proto/common/v1/common_pb.js";
import { Span_SpanKind, Status_StatusCode } from "../gen/opentelemetry/proto/trace/v1/trace_pb.js";

/** An attribute value as OTLP carries it, flattened to plain JavaScript. */
export type AttributeValue = string | number | boolean | bigint | Uint8Array | AttributeValue[] | { [key: string]: AttributeValue } | undefined;

/** One span as a receiver got it, ids as lower-case hex (empty when absent). */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: "unspecified" | "internal" | "server" | "client" | "producer" | "consumer";
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  readonly status: { readonly code: "unset" | "ok" | "error"; readonly message: string };
  readonly events: readonly { readonly name: string; readonly attributes: Readonly<Record<string, AttributeValue>> }[];
  /** The exporting process's resource attributes (`service.name`, …). */
  readonly resource: Readonly<Record<string, AttributeValue>>;
  /** The instrumentation scope (tracer name). */
  readonly scope: string;
}

export interface OtlpReceiver {
  /** The endpoint to give exporters as `OTEL_EXPORTER_OTLP_ENDPOINT` (they add `/v1/traces`). */
  readonly endpoint: string;
  /** Every span received so far, in arrival order. */
  spans(): readonly ReceivedSpan[];
  /** Export requests answered so far (refused ones included). */
  requests(): number;
  /** Resolves with the spans once `predicate` holds for them, or rejects naming what it saw after `timeoutMs`. */
  waitFor(predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<readonly ReceivedSpan[]>;
  close(): Promise<void>;
}

/**
 * An OTLP/HTTP trace receiver for tests: `POST /v1/traces` with a binary protobuf `ExportTraceServiceRequest`
 * (gzip or not), decoded with the OTLP message definitions under test/proto/opentelemetry, answered as a
 * collector answers (200 and an empty `ExportTraceServiceResponse`). Anything else is refused (404, 415, 400),
 * so an exporter sending the wrong thing fails loudly instead of being counted.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  let requests = 0;
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests++;
      if (req.method !== "POST" || req.url !== "/v1/traces") return answer(res, 404, `no ${req.method} ${req.url}`);
      if (!String(req.headers["content-type"]).startsWith("application/x-protobuf")) {
        return answer(res, 415, `expected application/x-protobuf, got ${req.headers["content-type"]}`);
      }
      let body = Buffer.concat(chunks);
      try {
        if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
        const request = fromBinary(ExportTraceServiceRequestSchema, body);
        for (const rs of request.resourceSpans) {
          const resource = attributesOf(rs.resource?.attributes ?? []);
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              received.push({
                traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: s.name,
                kind: KINDS[s.kind] ?? "unspecified",
                attributes: attributesOf(s.attributes),
                status: { code: STATUS_CODES[s.status?.code ?? Status_StatusCode.UNSET] ?? "unset", message: s.status?.message ?? "" },
                events: s.events.map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
                resource, scope: ss.scope?.name ?? "",
              });
            }
          }
        }
      } catch (err) {
        return answer(res, 400, `undecodable export request: ${String(err)}`);
      }
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end(toBinary(ExportTraceServiceResponseSchema, create(ExportTraceServiceResponseSchema)));
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => received,
    requests: () => requests,
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(received)) return;
          cleanup();
          resolve(received);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`OTLP receiver: condition not met within ${timeoutMs} ms; ${received.length} spans: ${
            received.map((s) => `${s.resource["service.name"]}:${s.name}`).join(", ")}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function answer(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "text/plain" });
  res.end(message);
}

const KINDS: Record<number, ReceivedSpan["kind"]> = {
  [Span_SpanKind.UNSPECIFIED]: "unspecified", [Span_SpanKind.INTERNAL]: "internal", [Span_SpanKind.SERVER]: "server",
  [Span_SpanKind.CLIENT]: "client", [Span_SpanKind.PRODUCER]: "producer", [Span_SpanKind.CONSUMER]: "consumer",
};

const STATUS_CODES: Record<number, ReceivedSpan["status"]["code"]> = {
  [Status_StatusCode.UNSET]: "unset", [Status_StatusCode.OK]: "ok", [Status_StatusCode.ERROR]: "error",
};

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function attributesOf(kvs: readonly KeyValue[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of kvs) out[kv.key] = valueOf(kv.value);
  return out;
}

function valueOf(v: AnyValue | undefined): AttributeValue {
  const value = v?.value;
  switch (value?.case) {
    case "stringValue":
    case "boolValue":
    case "doubleValue":
    case "bytesValue":
      return value.value;
    case "intValue":
      // int64 as a number when it fits (span attributes such as status codes and ports always do).
      return Number.isSafeInteger(Number(value.value)) ? Number(value.value) : value.value;
    case "arrayValue":
      return value.value.values.map(valueOf);
    case "kvlistValue":
      return attributesOf(value.value.values);
    default:
      return undefined;
  }
}

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack, type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Metadata, type StatusObject } from "@grpc/grpc-js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { HeaderMap } from "../header-map.js";

/** Trailer carrying a serialized `google.rpc.Status` with the error's details. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const typeUrlPrefix = "type.googleapis.com/";

/**
 * Renders a ConnectError as a gRPC status: the same numeric code (Connect's
 * codes are gRPC's), the client-safe message, the error's metadata as
 * trailers, and its details packed into `grpc-status-details-bin` so typed
 * details (e.g. `google.rpc.BadRequest`) reach clients in any language.
 */
export function grpcStatusFromError(err: ConnectError): Partial<StatusObject> {
  const metadata = metadataFromHeaders(err.metadata);
  const details: Any[] = err.details.map((d) =>
    "desc" in d
      ? anyPack(d.desc, create(d.desc, d.value))
      : create(AnySchema, { typeUrl: typeUrlPrefix + d.type, value: d.value }),
  );
  if (details.length > 0) {
    const status = create(StatusSchema, { code: err.code, message: err.rawMessage, details });
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(toBinary(StatusSchema, status)));
  }
  return { code: err.code as number, details: err.rawMessage, metadata };
}

/**
 * Turns a gRPC status received by a client into a ConnectError, keeping the
 * trailers as metadata and the typed details from `grpc-status-details-bin`
 * (readable with `err.findDetails(Schema)`).
 */
export function errorFromGrpcStatus(status: Pick<StatusObject, "code" | "details" | "metadata">): ConnectError {
  const raw = status.metadata.get(STATUS_DETAILS_KEY)[0];
  return errorFromWire(status.code, status.details, headersFromMetadata(status.metadata), raw instanceof Buffer ? raw : undefined);
}

/**
 * A gRPC status read off the wire as a ConnectError: `code` (unknown numbers
 * become UNKNOWN), the decoded `grpc-message`, the trailers as metadata and
 * the typed details of a serialized `google.rpc.Status` (`grpc-status-details-bin`).
 */
export function errorFromWire(n: number, message: string, metadata: Headers, statusDetails: Uint8Array | undefined): ConnectError {
  const code: Code = n >= 1 && n <= 16 ? n : Code.Unknown;
  const err = new ConnectError(message, code, metadata);
  err.isWireError = true;
  if (statusDetails) {
    try {
      const decoded = fromBinary(StatusSchema, statusDetails);
      for (const any of decoded.details) {
        err.details.push({ type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1), value: any.value });
      }
    } catch {
      // A malformed details trailer must not hide the status itself.
    }
  }
  return err;
}

/** Converts gRPC metadata to Fetch `Headers`; binary values are base64 as on the wire. */
export function headersFromMetadata(metadata: Metadata): Headers {
  const headers = new HeaderMap();
  for (const key of Object.keys(metadata.getMap())) {
    if (key === STATUS_DETAILS_KEY) continue;
    for (const v of metadata.get(key)) {
      headers.append(key, typeof v === "string" ? v : Buffer.from(v).toString("base64"));
    }
  }
  return headers;
}

/** Converts Fetch `Headers` to gRPC metadata; `-bin` keys are base64-decoded. */
export function metadataFromHeaders(headers: HeadersInit | undefined): Metadata {
  const metadata = new Metadata();
  if (headers === undefined) return metadata;
  new HeaderMap(headers).forEach((value, key) => {
    if (RESERVED_HEADERS.has(key)) return;
    if (key.endsWith("-bin")) {
      for (const part of value.split(",")) metadata.add(key, Buffer.from(part.trim(), "base64"));
    } else {
      metadata.add(key, value);
    }
  });
  return metadata;
}

/** Headers owned by the HTTP/2 and gRPC framing, never sent as metadata (grpc-js sets them itself). */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  "content-type", "content-length", "te", "host", "connection", "user-agent",
  "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status", "grpc-message",
]);

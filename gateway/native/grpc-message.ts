/**
 * `grpc-message` percent-encoded as the gRPC spec asks: only bytes outside
 * printable ASCII (0x20–0x7E) and `%` itself. Connect-ES encodes with
 * `encodeURIComponent`, which also escapes `:`, `/`, `,`, `;`, `=`… and
 * grpc-js clients decode with `decodeURI`, which leaves those escaped, so they
 * would read "log.request_id%3A required". Both decoders read this encoding
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#responses).
 */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Re-encodes the `grpc-message` a Connect handler left in `trailer` (see encodeGrpcMessage); a value that does not decode is kept. */
export function respecGrpcMessage(trailer: Headers): void {
  const value = trailer.get("grpc-message");
  if (value === null) return;
  try {
    trailer.set("grpc-message", encodeGrpcMessage(decodeURIComponent(value)));
  } catch {
    // Not percent-encoding we know: leave it as it is.
  }
}

import { describe, expect, it } from "vitest";
import { encodeGrpcMessage, respecGrpcMessage } from "./grpc-message.js";

describe("encodeGrpcMessage", () => {
  it.each(["log.request_id: required", "a/b?c=d&e,f;g@h#i+j$k", "100% sure", "héllo wörld ✓", "line\nbreak"])(
    "round-trips %j through decodeURI (grpc-js) and decodeURIComponent (Connect)", (message) => {
      const encoded = encodeGrpcMessage(message);
      expect(decodeURI(encoded)).toBe(message);
      expect(decodeURIComponent(encoded)).toBe(message);
    });

  it("escapes only what the gRPC spec asks", () => {
    expect(encodeGrpcMessage("a: b/c 100% é")).toBe("a: b/c 100%25 %C3%A9");
  });
});

describe("respecGrpcMessage", () => {
  it("re-encodes a Connect-encoded grpc-message in place", () => {
    const trailer = new Headers({ "grpc-status": "3", "grpc-message": encodeURIComponent("field: bad/value") });
    respecGrpcMessage(trailer);
    expect(trailer.get("grpc-message")).toBe("field: bad/value");
  });

  it("keeps a value that is not valid percent-encoding", () => {
    const trailer = new Headers({ "grpc-message": "50%off" });
    respecGrpcMessage(trailer);
    expect(trailer.get("grpc-message")).toBe("50%off");
  });
});

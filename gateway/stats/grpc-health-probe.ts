import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";

/** What one `grpc.health.v1.Health/Check` call found: `SERVING`, another serving status, or the gRPC code name of the failure. */
export interface ProbeOutcome {
  readonly serving: boolean;
  readonly detail: string;
}

export interface GrpcHealthProbe {
  /** Asks `address` for the health of `service` ("" = the whole server); settles within `timeoutMs`, never rejects. */
  check(address: string, service: string, timeoutMs: number): Promise<ProbeOutcome>;
  /** Closes the channels of addresses not in `addresses` (endpoints that went away). */
  retain(addresses: ReadonlySet<string>): void;
  close(): void;
}

const CHECK = "/grpc.health.v1.Health/Check";
/** grpc.health.v1.HealthCheckResponse.ServingStatus, by number. */
const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/**
 * A `grpc.health.v1` client over one long-lived grpc-js channel per address,
 * kept apart from the clusters' channels so that probes neither count as
 * traffic nor meet the circuit breaker. The two tiny messages are coded by
 * hand (`HealthCheckRequest.service` = field 1, `HealthCheckResponse.status`
 * = field 1), so no proto is loaded at run time. Reconnection backoff is
 * capped at 1 s: a service that comes back is seen as up within a second,
 * not after grpc-js's default backoff of up to two minutes.
 */
export function createGrpcHealthProbe(): GrpcHealthProbe {
  const clients = new Map<string, grpc.Client>();
  const clientFor = (address: string) => {
    let c = clients.get(address);
    if (!c) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), {
        "grpc.initial_reconnect_backoff_ms": 250,
        "grpc.max_reconnect_backoff_ms": 1_000,
      });
      clients.set(address, c);
    }
    return c;
  };
  return {
    check: (address, service, timeoutMs) => new Promise((resolve) => {
      let call: grpc.ClientUnaryCall | undefined;
      // The deadline tells the server; the timer bounds us even if the call never settles.
      const timer = setTimeout(() => {
        call?.cancel();
        resolve({ serving: false, detail: "DEADLINE_EXCEEDED" });
      }, timeoutMs);
      try {
        call = clientFor(address).makeUnaryRequest(CHECK, encodeRequest, decodeStatus, service,
          new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, status) => {
            clearTimeout(timer);
            if (err) return resolve({ serving: false, detail: grpc.status[err.code] ?? "UNKNOWN" });
            resolve({ serving: status === "SERVING", detail: status ?? "UNKNOWN" });
          });
      } catch {
        // grpc-js refuses an unparsable target synchronously.
        clearTimeout(timer);
        resolve({ serving: false, detail: "INVALID_ADDRESS" });
      }
    }),
    retain(addresses) {
      for (const [address, c] of clients) {
        if (addresses.has(address)) continue;
        c.close();
        clients.delete(address);
      }
    },
    close() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}

function encodeRequest(service: string): Buffer {
  const w = new BinaryWriter();
  if (service !== "") w.tag(1, WireType.LengthDelimited).string(service);
  return Buffer.from(w.finish());
}

function decodeStatus(bytes: Buffer): string {
  const r = new BinaryReader(bytes);
  let status = 0;
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1 && wireType === WireType.Varint) status = r.int32();
    else r.skip(wireType, field);
  }
  return SERVING_STATUS[status] ?? `STATUS_${status}`;
}

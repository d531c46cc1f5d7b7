import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createServiceImplSpec } from "@connectrpc/connect";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcServer, type GrpcServer } from "../../lib/grpc/server.js";

/**
 * Test double (imported by this folder's tests only): a real gRPC server of
 * the logging contract that names itself in its answers. Its methods cover
 * the three retry cases: `getLog` is unary and idempotent, `ingestLog` unary
 * and not idempotent, `tailLogs` a server stream.
 */
export interface Upstream {
  readonly name: string;
  readonly address: string;
  readonly server: GrpcServer;
  /** Calls received, any method. */
  calls: number;
  /** Request IDs of the unary calls, in arrival order. */
  readonly seen: string[];
  /** When set, every call fails with this code (after `delayMs`). */
  failWith: Code | undefined;
  /** Unary calls answer after this many ms. */
  delayMs: number;
}

function impl(u: Upstream) {
  const unary = async (requestId: string, signal: AbortSignal) => {
    u.calls++;
    u.seen.push(requestId);
    const delay = requestId === "slow" ? 300 : u.delayMs;
    if (delay > 0) await sleep(delay, undefined, { signal }).catch(() => undefined);
    if (u.failWith !== undefined) throw new ConnectError(`${u.name} fails`, u.failWith);
    if (requestId === "fail") throw new ConnectError("broken", Code.Internal);
  };
  return {
    async getLog(req: { requestId: string }, ctx: { signal: AbortSignal }) {
      await unary(req.requestId, ctx.signal);
      return { log: { requestId: u.name } };
    },
    async ingestLog(req: { log?: { requestId: string } }, ctx: { signal: AbortSignal }) {
      await unary(req.log?.requestId ?? "", ctx.signal);
      return { message: u.name };
    },
    async *tailLogs(req: { userId: string }) {
      u.calls++;
      if (u.failWith !== undefined) throw new ConnectError(`${u.name} fails`, u.failWith);
      for (let i = 0; i < 2; i++) yield { log: { requestId: `${u.name}-${req.userId}-${i}` } };
      if (req.userId === "fail") throw new ConnectError("tail broke", Code.DataLoss);
    },
  };
}

/** Starts one upstream per name on 127.0.0.1, port 0. */
export async function startUpstreams(names: readonly string[]): Promise<Upstream[]> {
  return Promise.all(names.map(async (name) => {
    const u = { name, calls: 0, seen: [], failWith: undefined, delayMs: 0 } as unknown as Upstream & { address: string; server: GrpcServer };
    u.server = createGrpcServer({ services: [createServiceImplSpec(LoggingService, impl(u) as never)] });
    u.address = `127.0.0.1:${await u.server.listen("127.0.0.1", 0)}`;
    return u;
  }));
}

/** Puts every upstream back to serving normally, and forgets its calls. */
export function resetUpstreams(upstreams: readonly Upstream[]): void {
  for (const u of upstreams) {
    u.calls = 0;
    u.seen.length = 0;
    u.failWith = undefined;
    u.delayMs = 0;
    u.server.health.setStatus("", "SERVING");
  }
}

export async function stopUpstreams(upstreams: readonly Upstream[]): Promise<void> {
  await Promise.all(upstreams.map((u) => u.server.shutdown(100)));
}

import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, createServiceImplSpec } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcServer, type GrpcServer } from "../../lib/grpc/server.js";
import { createCluster, type Cluster } from "./cluster.js";

// Three real gRPC servers of the logging contract, each naming itself in its answers.
const servers: GrpcServer[] = [];
const addresses: string[] = [];

function impl(name: string) {
  return {
    async ingestLog(req: { log?: { requestId: string } }, ctx: { signal: AbortSignal }) {
      if (req.log?.requestId === "slow") await sleep(300, undefined, { signal: ctx.signal }).catch(() => undefined);
      if (req.log?.requestId === "fail") throw new ConnectError("broken", Code.Internal);
      return { message: name };
    },
    async *tailLogs(req: { userId: string }) {
      for (let i = 0; i < 2; i++) yield { log: { requestId: `${name}-${req.userId}-${i}` } };
      if (req.userId === "fail") throw new ConnectError("tail broke", Code.DataLoss);
    },
  };
}

beforeAll(async () => {
  for (const name of ["a", "b", "c"]) {
    const server = createGrpcServer({ services: [createServiceImplSpec(LoggingService, impl(name) as never)] });
    addresses.push(`127.0.0.1:${await server.listen("127.0.0.1", 0)}`);
    servers.push(server);
  }
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.shutdown(500)));
});

let cluster: Cluster | undefined;
afterEach(() => cluster?.close());

const answerer = (c: Cluster) => createClient(LoggingService, c.transport);

describe("cluster", () => {
  it("spreads calls round robin over its endpoints", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses });
    const client = answerer(cluster);
    const names = [];
    for (let i = 0; i < 6; i++) names.push((await client.ingestLog({ log: { requestId: "r" } })).message);
    expect(names.sort()).toEqual(["a", "a", "b", "b", "c", "c"]);
    expect(cluster.endpoints().map((e) => [e.requests, e.inFlight])).toEqual([[2, 0], [2, 0], [2, 0]]);
  });

  it("sends to the endpoint with the fewest calls in flight under least_request", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses.slice(0, 2), lbPolicy: "least_request" });
    const client = answerer(cluster);
    const slow = client.ingestLog({ log: { requestId: "slow" } });
    await sleep(20);
    const busy = cluster.endpoints().find((e) => e.inFlight === 1)!.address;
    for (let i = 0; i < 3; i++) await client.ingestLog({ log: { requestId: "r" } });
    const idle = cluster.endpoints().find((e) => e.address !== busy)!;
    expect(idle.requests).toBe(3);
    await slow;
  });

  it("fails fast with UNAVAILABLE beyond its concurrency limit and counts it", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses, maxConcurrent: 2 });
    const client = answerer(cluster);
    const slow = [client.ingestLog({ log: { requestId: "slow" } }), client.ingestLog({ log: { requestId: "slow" } })];
    const started = Date.now();
    const err = await client.ingestLog({ log: { requestId: "r" } }).catch((e: unknown) => ConnectError.from(e));
    expect([(err as ConnectError).code, Date.now() - started < 100]).toEqual([Code.Unavailable, true]);
    await Promise.all(slow);
    expect(cluster.overflows()).toBe(1);
    expect((await client.ingestLog({ log: { requestId: "r" } })).message).toMatch(/^[abc]$/);
  });

  it("counts failures per endpoint and releases calls that failed", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses.slice(0, 1) });
    const client = answerer(cluster);
    await expect(client.ingestLog({ log: { requestId: "fail" } })).rejects.toMatchObject({ code: Code.Internal });
    expect(cluster.endpoints()[0]).toMatchObject({ requests: 1, failures: 1, inFlight: 0 });
  });

  it("carries server streams, holding the call in flight until the stream ends, errors included", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses.slice(0, 1) });
    const client = answerer(cluster);
    const seen: string[] = [];
    for await (const m of client.tailLogs({ userId: "u" })) {
      seen.push(m.log!.requestId);
      expect(cluster.endpoints()[0]!.inFlight).toBe(1);
    }
    expect(seen).toEqual(["a-u-0", "a-u-1"]);
    const failed: string[] = [];
    const err = await (async () => { for await (const m of client.tailLogs({ userId: "fail" })) failed.push(m.log!.requestId); })().catch((e: unknown) => e);
    expect([(err as ConnectError).code, failed.length]).toEqual([Code.DataLoss, 2]);
    expect(cluster.endpoints()[0]).toMatchObject({ requests: 2, failures: 1, inFlight: 0 });
  });

  it("follows a DNS name's address set, keeping the last set when resolution fails", async () => {
    const ports = addresses.map((a) => Number(a.split(":")[1]));
    // Each server listens on 127.0.0.1 with its own port; the fake resolver answers loopback aliases of one port.
    let answer: string[] | Error = ["127.0.0.1"];
    const errors: unknown[] = [];
    cluster = createCluster({
      name: "logging", dns: { name: "logging.mesh.svc", port: ports[1]!, refreshMs: 60_000 },
      resolve: async () => { if (answer instanceof Error) throw answer; return answer; }, onResolveError: (e) => errors.push(e),
    });
    const client = answerer(cluster);
    await expect(client.ingestLog({ log: { requestId: "r" } })).rejects.toMatchObject({ code: Code.Unavailable });
    await cluster.refresh();
    expect((await client.ingestLog({ log: { requestId: "r" } })).message).toBe("b");
    answer = ["127.0.0.1", "127.0.0.2"];
    await cluster.refresh();
    expect(cluster.endpoints().map((e) => e.address)).toEqual([`127.0.0.1:${ports[1]}`, `127.0.0.2:${ports[1]}`]);
    answer = new Error("SERVFAIL");
    await cluster.refresh();
    expect([cluster.endpoints().length, errors.length]).toEqual([2, 1]);
    answer = ["127.0.0.1"];
    await cluster.refresh();
    expect(cluster.endpoints().map((e) => e.address)).toEqual([`127.0.0.1:${ports[1]}`]);
  });
});

import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createCluster, type Cluster } from "./cluster.js";
import { resetUpstreams, startUpstreams, stopUpstreams, type Upstream } from "./test-upstreams.js";

// Three real gRPC servers of the logging contract, each naming itself in its answers.
let upstreams: Upstream[] = [];
let addresses: string[] = [];

beforeAll(async () => {
  upstreams = await startUpstreams(["a", "b", "c"]);
  addresses = upstreams.map((u) => u.address);
});
afterAll(() => stopUpstreams(upstreams));
afterEach(() => resetUpstreams(upstreams));

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

  it("queues calls beyond its concurrency limit and admits them in arrival order", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses.slice(0, 1), maxConcurrent: 1, maxPending: 3 });
    const client = answerer(cluster);
    const held = client.ingestLog({ log: { requestId: "slow" } });
    const queued = ["q1", "q2", "q3"].map((id) => client.ingestLog({ log: { requestId: id } }));
    expect(cluster.stats()).toMatchObject({ inFlight: 1, pending: 3 });
    await Promise.all([held, ...queued]);
    expect([upstreams[0]!.seen, cluster.overflows()]).toEqual([["slow", "q1", "q2", "q3"], 0]);
  });

  it("refuses calls beyond its pending limit with UNAVAILABLE at once and counts them", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses.slice(0, 1), maxConcurrent: 1, maxPending: 1 });
    const client = answerer(cluster);
    const admitted = [client.ingestLog({ log: { requestId: "slow" } }), client.ingestLog({ log: { requestId: "q1" } })];
    const started = Date.now();
    const err = await client.ingestLog({ log: { requestId: "q2" } }).catch((e: unknown) => ConnectError.from(e));
    expect([(err as ConnectError).code, Date.now() - started < 100, cluster.overflows()]).toEqual([Code.Unavailable, true, 1]);
    await Promise.all(admitted);
    expect(upstreams[0]!.seen).toEqual(["slow", "q1"]);
  });

  it("fails a queued call with DEADLINE_EXCEEDED once its own deadline passes in the queue", async () => {
    cluster = createCluster({ name: "logging", endpoints: addresses.slice(0, 1), maxConcurrent: 1, maxPending: 1 });
    const client = answerer(cluster);
    const held = client.ingestLog({ log: { requestId: "slow" } });
    const started = Date.now();
    const err = await client.ingestLog({ log: { requestId: "late" } }, { timeoutMs: 50 }).catch((e: unknown) => ConnectError.from(e));
    expect([(err as ConnectError).code, Date.now() - started < 250]).toEqual([Code.DeadlineExceeded, true]);
    expect(cluster.stats()).toMatchObject({ pending: 0, pendingTimeouts: 1, overflows: 0 });
    await held;
    expect(upstreams[0]!.seen).toEqual(["slow"]);
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

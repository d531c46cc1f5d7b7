import { Code, createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { eventually } from "../../test/support/analytics-harness.js";
import { createCluster, type Cluster } from "./cluster.js";
import { resetUpstreams, startUpstreams, stopUpstreams, type Upstream } from "./test-upstreams.js";

let upstreams: Upstream[] = [];
beforeAll(async () => { upstreams = await startUpstreams(["a", "b", "c", "d"]); });
afterAll(() => stopUpstreams(upstreams));

let cluster: Cluster | undefined;
afterEach(() => {
  cluster?.close();
  resetUpstreams(upstreams);
});

const outlierDetection = { consecutiveFailures: 2, baseEjectionMs: 200, maxEjectionPercent: 50 };

/** Makes `n` GetLog calls, answering the name of each endpoint that succeeded ("!" for a failure). */
async function answers(c: Cluster, n: number): Promise<string[]> {
  const client = createClient(LoggingService, c.transport);
  const names = [];
  for (let i = 0; i < n; i++) names.push(await client.getLog({ requestId: "r" }).then((r) => r.log!.requestId, () => "!"));
  return names;
}

describe("outlier detection", () => {
  it("ejects an endpoint after consecutive UNAVAILABLE and takes it back after the ejection time", async () => {
    const [live] = upstreams;
    const [dead] = await startUpstreams(["dead"]);
    await stopUpstreams([dead!]); // connection refused from now on: UNAVAILABLE
    cluster = createCluster({ name: "logging", endpoints: [live!.address, dead!.address], outlierDetection });
    expect(await answers(cluster, 4)).toEqual(["a", "!", "a", "!"]);
    const ejected = cluster.endpoints()[1]!;
    expect(ejected).toMatchObject({ ejections: 1, consecutiveFailures: 0 });
    expect(ejected.ejectedUntil! - Date.now()).toBeGreaterThan(100);
    expect(await answers(cluster, 4)).toEqual(["a", "a", "a", "a"]);
    // Back in rotation once the ejection ends: it is tried (and fails) again.
    await eventually(async () => { await answers(cluster!, 1); return cluster!.endpoints()[1]!.requests > 2 ? true : undefined; },
      { timeoutMs: 3_000, intervalMs: 20, what: "the ejected endpoint back in rotation" });
    expect(cluster.stats().ejections).toBe(1);
  });

  it("ejects a second time for twice as long", async () => {
    upstreams[1]!.failWith = Code.Unavailable;
    cluster = createCluster({ name: "logging", endpoints: [upstreams[0]!.address, upstreams[1]!.address], outlierDetection });
    await answers(cluster, 4);
    const first = cluster.endpoints()[1]!.ejectedUntil! - Date.now();
    await eventually(async () => { await answers(cluster!, 1); return cluster!.endpoints()[1]!.ejections === 2 ? true : undefined; },
      { timeoutMs: 3_000, intervalMs: 20, what: "a second ejection" });
    const second = cluster.endpoints()[1]!.ejectedUntil! - Date.now();
    expect([first <= 200, second > 200, second <= 400]).toEqual([true, true, true]);
  });

  it.each([
    ["NOT_FOUND", Code.NotFound],
    ["INVALID_ARGUMENT", Code.InvalidArgument],
    ["PERMISSION_DENIED", Code.PermissionDenied],
  ])("never ejects an endpoint for application errors (%s)", async (_name, code) => {
    upstreams[1]!.failWith = code;
    cluster = createCluster({ name: "logging", endpoints: [upstreams[0]!.address, upstreams[1]!.address], outlierDetection });
    expect(await answers(cluster, 6)).toEqual(["a", "!", "a", "!", "a", "!"]);
    expect(cluster.endpoints()[1]).toMatchObject({ failures: 3, consecutiveFailures: 0, ejections: 0 });
  });

  it("starts counting again after a success", async () => {
    upstreams[1]!.failWith = Code.Unavailable;
    cluster = createCluster({ name: "logging", endpoints: [upstreams[1]!.address], outlierDetection: { ...outlierDetection, consecutiveFailures: 3 } });
    await answers(cluster, 2);
    upstreams[1]!.failWith = undefined;
    await answers(cluster, 1);
    upstreams[1]!.failWith = Code.Unavailable;
    await answers(cluster, 2);
    expect(cluster.endpoints()[0]).toMatchObject({ consecutiveFailures: 2, ejections: 0 });
  });

  it.each([
    // endpoints, max %, ejected: Envoy's rule, at least one, then only while the share stays within the max
    [3, 50, 1],
    [4, 50, 2],
    [4, 10, 1],
    [3, 0, 1],
    [4, 100, 4],
  ])("of %i failing endpoints at max %i %% ejects %i", async (n, maxEjectionPercent, ejected) => {
    const group = upstreams.slice(0, n);
    for (const u of group) u.failWith = Code.Unavailable;
    cluster = createCluster({ name: "logging", endpoints: group.map((u) => u.address), outlierDetection: { ...outlierDetection, maxEjectionPercent } });
    await answers(cluster, 4 * n);
    expect(cluster.endpoints().filter((e) => e.ejectedUntil! > Date.now()).length).toBe(ejected);
  });
});

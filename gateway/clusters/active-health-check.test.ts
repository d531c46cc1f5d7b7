import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { eventually } from "../../test/support/analytics-harness.js";
import { startActiveHealthCheck, type ProbedEndpoint } from "./active-health-check.js";
import { createCluster, type Cluster } from "./cluster.js";
import { resetUpstreams, startUpstreams, stopUpstreams, type Upstream } from "./test-upstreams.js";

let upstreams: Upstream[] = [];
beforeAll(async () => { upstreams = await startUpstreams(["a", "b"]); });
afterAll(() => stopUpstreams(upstreams));

let cluster: Cluster | undefined;
afterEach(() => {
  cluster?.close();
  resetUpstreams(upstreams);
});

const healthCheck = { intervalMs: 20, timeoutMs: 200, unhealthyThreshold: 2, healthyThreshold: 2 };

function checkedCluster(): Cluster {
  return createCluster({ name: "logging", endpoints: upstreams.map((u) => u.address), healthCheck });
}

/** Waits until the endpoints' health reads `want`, in endpoint order. */
const healthIs = (c: Cluster, ...want: string[]) =>
  eventually(async () => (c.endpoints().every((e, i) => e.health === want[i]) ? true : undefined), { timeoutMs: 3_000, intervalMs: 10, what: `health ${want.join(",")}` });

/** The names of the endpoints that answer `n` calls. */
async function answers(c: Cluster, n: number): Promise<string[]> {
  const client = createClient(LoggingService, c.transport);
  const names = [];
  for (let i = 0; i < n; i++) names.push((await client.getLog({ requestId: "r" })).log!.requestId);
  return names.sort();
}

describe("active health checks", () => {
  it("starts probing at creation and marks serving endpoints healthy", async () => {
    cluster = checkedCluster();
    expect(cluster.endpoints().map((e) => e.health)).toEqual(["unknown", "unknown"]);
    await healthIs(cluster, "healthy", "healthy");
  });

  it("takes an endpoint out of rotation after its failed checks and back after its passed ones", async () => {
    cluster = checkedCluster();
    await healthIs(cluster, "healthy", "healthy");
    upstreams[1]!.server.health.setStatus("", "NOT_SERVING");
    await healthIs(cluster, "healthy", "unhealthy");
    expect(await answers(cluster, 4)).toEqual(["a", "a", "a", "a"]);
    upstreams[1]!.server.health.setStatus("", "SERVING");
    await healthIs(cluster, "healthy", "healthy");
    expect(await answers(cluster, 4)).toEqual(["a", "a", "b", "b"]);
  });

  it("uses every endpoint when none is healthy (panic mode) rather than refusing calls", async () => {
    cluster = checkedCluster();
    for (const u of upstreams) u.server.health.setStatus("", "NOT_SERVING");
    await healthIs(cluster, "unhealthy", "unhealthy");
    expect(await answers(cluster, 4)).toEqual(["a", "a", "b", "b"]);
    expect(cluster.stats().panics).toBe(4);
  });

  it("stops probing when stopped", async () => {
    const endpoint: ProbedEndpoint = { address: upstreams[1]!.address, health: "unknown", probeStreak: 0 };
    const checks = startActiveHealthCheck({ ...healthCheck, unhealthyThreshold: 1 }, () => [endpoint]);
    await eventually(async () => (endpoint.health === "healthy" ? true : undefined), { timeoutMs: 3_000, intervalMs: 10, what: "healthy" });
    checks.stop();
    upstreams[1]!.server.health.setStatus("", "NOT_SERVING");
    // Nothing to poll for: a live checker would flip it within one interval; give it five.
    await sleep(5 * healthCheck.intervalMs);
    expect(endpoint.health).toBe("healthy");
  });
});

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createCluster, type Cluster } from "./cluster.js";
import { backoffMs, callWithRetry, createRetryBudget, isRetryable, type RetryPolicy } from "./retry.js";
import { resetUpstreams, startUpstreams, stopUpstreams, type Upstream } from "./test-upstreams.js";

const policy: RetryPolicy = { attempts: 3, backoffBaseMs: 5, backoffMaxMs: 20, budgetPercent: 20 };
const unavailable = () => new ConnectError("down", Code.Unavailable);
const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));

describe("backoffMs", () => {
  it.each([
    // retry, random, ms: full jitter below min(max, base × 2^(retry-1))
    [1, 0.999, 4], [2, 0.999, 9], [3, 0.999, 19], [4, 0.999, 19], [3, 0.5, 10], [1, 0, 0],
  ])("retry %i with random %d waits %i ms", (retry, random, ms) => {
    expect(backoffMs(retry, policy, () => random)).toBe(ms);
  });
});

describe("callWithRetry", () => {
  const budget = () => createRetryBudget(policy, () => 1);

  it("retries UNAVAILABLE until an attempt succeeds", async () => {
    const seen: number[] = [];
    const answer = await callWithRetry(async (n) => { seen.push(n); if (n < 3) throw unavailable(); return "ok"; },
      { policy, budget: budget(), deadlineAt: Date.now() + 1_000 });
    expect([answer, seen]).toEqual(["ok", [1, 2, 3]]);
  });

  it("stops after the policy's attempts and rethrows the last failure", async () => {
    let n = 0;
    const err = await errorOf(callWithRetry(async () => { n++; throw unavailable(); }, { policy, budget: budget(), deadlineAt: Date.now() + 1_000 }));
    expect([err?.code, n]).toEqual([Code.Unavailable, 3]);
  });

  it.each([Code.Internal, Code.DeadlineExceeded, Code.NotFound, Code.ResourceExhausted])("never retries code %i", async (code) => {
    let n = 0;
    const err = await errorOf(callWithRetry(async () => { n++; throw new ConnectError("no", code); }, { policy, budget: budget(), deadlineAt: Date.now() + 1_000 }));
    expect([err?.code, n]).toEqual([code, 1]);
  });

  it("does not start a backoff that would end past the deadline", async () => {
    let n = 0;
    const err = await errorOf(callWithRetry(async () => { n++; throw unavailable(); },
      { policy: { ...policy, backoffBaseMs: 1_000, backoffMaxMs: 1_000 }, budget: budget(), deadlineAt: Date.now() + 100, random: () => 0.5 }));
    expect([err?.code, n]).toEqual([Code.Unavailable, 1]);
  });

  it("answers CANCELED when the caller aborts during a backoff, releasing its budget", async () => {
    const b = budget();
    const abort = new AbortController();
    const call = callWithRetry(async () => { throw unavailable(); },
      { policy: { ...policy, backoffBaseMs: 10_000, backoffMaxMs: 10_000 }, budget: b, deadlineAt: Date.now() + 60_000, signal: abort.signal, random: () => 0.5 });
    setImmediate(() => abort.abort());
    expect((await errorOf(call))?.code).toBe(Code.Canceled);
    expect(b.active()).toBe(0);
  });
});

describe("createRetryBudget", () => {
  it("allows retries up to the percentage of the load, never fewer than the minimum", () => {
    let load = 10;
    const b = createRetryBudget({ ...policy, budgetPercent: 20, minRetryConcurrency: 1 }, () => load);
    expect([b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]).toEqual([true, true, false]);
    load = 0;
    b.release();
    expect([b.tryAcquire(), b.active(), b.exhausted()]).toEqual([false, 1, 2]);
    b.release();
    expect(b.tryAcquire()).toBe(true);
  });
});

describe("isRetryable", () => {
  it("allows unary methods marked idempotent only", () => {
    const m = LoggingService.method;
    expect([isRetryable(m.getLog), isRetryable(m.ingestLog), isRetryable(m.tailLogs)]).toEqual([true, false, false]);
  });
});

describe("cluster retries", () => {
  let upstreams: Upstream[] = [];
  beforeAll(async () => { upstreams = await startUpstreams(["a", "b"]); });
  afterAll(() => stopUpstreams(upstreams));
  let cluster: Cluster | undefined;
  afterEach(() => {
    cluster?.close();
    resetUpstreams(upstreams);
  });
  const retryingCluster = (retry: Partial<RetryPolicy> = {}) =>
    createCluster({ name: "logging", endpoints: upstreams.map((u) => u.address), retry: { ...policy, ...retry } });
  const client = (c: Cluster) => createClient(LoggingService, c.transport);

  it("retries an idempotent unary call that failed UNAVAILABLE on another endpoint", async () => {
    upstreams[0]!.failWith = Code.Unavailable;
    cluster = retryingCluster();
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await client(cluster).getLog({ requestId: "r" })).log!.requestId);
    expect(names).toEqual(["b", "b", "b", "b"]);
    expect([upstreams[0]!.calls > 0, cluster.stats().retries]).toEqual([true, upstreams[0]!.calls]);
  });

  it("retries a call refused by a stopped endpoint", async () => {
    const [dead] = await startUpstreams(["dead"]);
    await stopUpstreams([dead!]);
    cluster = createCluster({ name: "logging", endpoints: [dead!.address, upstreams[1]!.address], retry: policy });
    for (let i = 0; i < 2; i++) expect((await client(cluster).getLog({ requestId: "r" })).log!.requestId).toBe("b");
    expect(cluster.stats().retries).toBe(cluster.endpoints()[0]!.requests);
    expect(cluster.stats().retries).toBeGreaterThan(0);
  });

  it("never retries a method that is not idempotent", async () => {
    upstreams[0]!.failWith = Code.Unavailable;
    cluster = retryingCluster();
    const errors = [];
    for (let i = 0; i < 2; i++) errors.push((await errorOf(client(cluster).ingestLog({ log: { requestId: "r" } })))?.code);
    expect([errors, upstreams[0]!.calls, upstreams[1]!.calls, cluster.stats().retries]).toEqual([[Code.Unavailable, undefined], 1, 1, 0]);
  });

  it("never retries a stream", async () => {
    upstreams[0]!.failWith = Code.Unavailable;
    cluster = retryingCluster();
    const err = await errorOf((async () => { for await (const _ of client(cluster!).tailLogs({ userId: "u" })) { /* drain */ } })());
    expect([err?.code, upstreams[0]!.calls + upstreams[1]!.calls, cluster.stats().retries]).toEqual([Code.Unavailable, 1, 0]);
  });

  it("stops after the policy's attempts", async () => {
    for (const u of upstreams) u.failWith = Code.Unavailable;
    cluster = retryingCluster({ attempts: 3 });
    const err = await errorOf(client(cluster).getLog({ requestId: "r" }));
    expect([err?.code, upstreams[0]!.calls + upstreams[1]!.calls, cluster.stats().retries]).toEqual([Code.Unavailable, 3, 2]);
  });

  it("never retries past the call's deadline", async () => {
    for (const u of upstreams) {
      u.failWith = Code.Unavailable;
      u.delayMs = 40;
    }
    cluster = retryingCluster({ attempts: 10, backoffBaseMs: 1, backoffMaxMs: 1 });
    const started = Date.now();
    const err = await errorOf(client(cluster).getLog({ requestId: "r" }, { timeoutMs: 100 }));
    const calls = upstreams[0]!.calls + upstreams[1]!.calls;
    expect([err?.code === Code.Unavailable || err?.code === Code.DeadlineExceeded, calls >= 2 && calls <= 3, Date.now() - started < 200])
      .toEqual([true, true, true]);
  });

  it("retries no more than the budget allows when many calls fail at once", async () => {
    for (const u of upstreams) {
      u.failWith = Code.Unavailable;
      u.delayMs = 50;
    }
    // 5 calls in flight at 1 % allow max(1, 0.05) = 1 retry at a time; the one retry holds it past the others' failures.
    cluster = retryingCluster({ attempts: 2, backoffBaseMs: 1, backoffMaxMs: 1, budgetPercent: 1, minRetryConcurrency: 1 });
    const errors = await Promise.all(Array.from({ length: 5 }, () => errorOf(client(cluster!).getLog({ requestId: "r" }))));
    expect(errors.map((e) => e?.code)).toEqual(Array(5).fill(Code.Unavailable));
    expect([upstreams[0]!.calls + upstreams[1]!.calls, cluster.stats()]).toEqual([6, expect.objectContaining({ retries: 1, retryBudgetExhausted: 4 })]);
  });
});

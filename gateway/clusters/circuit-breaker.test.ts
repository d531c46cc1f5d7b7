import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createCircuitBreaker } from "./circuit-breaker.js";

const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));

describe("circuit breaker", () => {
  it("hands a freed slot to the oldest waiting call", async () => {
    const breaker = createCircuitBreaker({ name: "c", maxConcurrent: 1, maxPending: 2 });
    await breaker.acquire(undefined, Infinity);
    const admitted: string[] = [];
    const waits = ["first", "second"].map((name) => breaker.acquire(undefined, Infinity).then(() => admitted.push(name)));
    breaker.release();
    await waits[0];
    expect([admitted, breaker.inFlight(), breaker.pending()]).toEqual([["first"], 1, 1]);
    breaker.release();
    await waits[1];
    breaker.release();
    expect([admitted, breaker.inFlight(), breaker.pending()]).toEqual([["first", "second"], 0, 0]);
  });

  it("takes a call the caller cancels out of the queue with CANCELED", async () => {
    const breaker = createCircuitBreaker({ name: "c", maxConcurrent: 1, maxPending: 1 });
    await breaker.acquire(undefined, Infinity);
    const abort = new AbortController();
    const waiting = errorOf(breaker.acquire(abort.signal, Infinity));
    abort.abort();
    expect([(await waiting)?.code, breaker.pending()]).toEqual([Code.Canceled, 0]);
    breaker.release();
    expect(breaker.inFlight()).toBe(0);
  });

  it("refuses at once with UNAVAILABLE when maxPending is 0", async () => {
    const breaker = createCircuitBreaker({ name: "c", maxConcurrent: 1, maxPending: 0 });
    await breaker.acquire(undefined, Infinity);
    expect([(await errorOf(breaker.acquire(undefined, Infinity)))?.code, breaker.overflows()]).toEqual([Code.Unavailable, 1]);
  });
});

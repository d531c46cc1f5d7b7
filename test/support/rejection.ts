import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** The ConnectError `call` rejects with; fails the test when it resolves. */
export async function rejectionOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Runs `call`, expecting it to fail UNAVAILABLE; answers how long it took, ms. */
export async function timedUnavailable(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  const err = await rejectionOf(call());
  expect(err.code, `${err.message} (${String(err.cause)})`).toBe(Code.Unavailable);
  return performance.now() - started;
}

/** Retries `call` every `intervalMs` until it succeeds or `ms` pass (then throws its error); answers how long it took, ms. */
export async function untilSucceeds(call: () => Promise<unknown>, ms: number, intervalMs = 200): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      await call();
      return performance.now() - started;
    } catch (err) {
      if (performance.now() - started > ms) throw err;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

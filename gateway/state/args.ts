import { Code, ConnectError } from "@connectrpc/connect";

/** The longest period or TTL the state accepts, ms (a year; keeps every µs instant below 2^53). */
export const MAX_SPAN_MS = 366 * 24 * 3_600_000;

/** Throws INVALID_ARGUMENT unless `ttlMs` is an integer from 1 ms to MAX_SPAN_MS. */
export function checkTtl(ttlMs: number): void {
  if (!isIntIn(ttlMs, 1, MAX_SPAN_MS)) throw invalidArgument(`ttl must be an integer from 1 to ${MAX_SPAN_MS} ms`);
}

/** Whether `n` is an integer from `min` to `max`. */
export const isIntIn = (n: number, min: number, max: number): boolean => Number.isInteger(n) && n >= min && n <= max;

/** Both adapters refuse the same arguments, so code passing bad ones fails in local tests too. */
export function invalidArgument(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

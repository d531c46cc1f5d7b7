import { randomUUID } from "node:crypto";

/** What an incoming request ID may look like: 1–128 characters of letters, digits and `._:-`, starting with a letter or digit. */
const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * The request's ID: the client's `x-request-id` when it is well formed (so a
 * caller can correlate its own logs), a new UUID otherwise. It is echoed on
 * the reply and forwarded upstream.
 */
export function requestIdOf(header: string | string[] | undefined): string {
  // Several values are as ambiguous as Node's joined "a, b" form of them: neither is kept.
  const value = Array.isArray(header) ? (header.length === 1 ? header[0] : undefined) : header;
  return value !== undefined && WELL_FORMED.test(value) ? value : randomUUID();
}

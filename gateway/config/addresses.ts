import { isIP } from "node:net";

/** An upstream address: a DNS name or an IP literal (IPv6 without brackets) and a port 1-65535. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Whether `s` is a DNS name (RFC 1123 labels, at most 253 characters) or an IP literal. */
export function isHost(s: string): boolean {
  if (isIP(s) !== 0) return true;
  const name = s.endsWith(".") ? s.slice(0, -1) : s;
  return name.length > 0 && name.length <= 253 && name.split(".").every((l) => label.test(l));
}

/** Parses "host:port" or "[v6]:port"; a string says what is wrong. */
export function parseHostPort(s: string): HostPort | string {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  if (m === null) return `${JSON.stringify(s)} is not host:port (IPv6 as [::1]:port)`;
  const host = m[1] ?? "";
  const port = Number(m[2]);
  if (s.startsWith("[") ? isIP(host) !== 6 : !isHost(host)) return `${JSON.stringify(host)} is not a host name or IP address`;
  if (!isPort(port)) return `port ${m[2]} is not 1-65535`;
  return { host, port };
}

/** A port an upstream can listen on. */
export function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Why `s` is not a CORS origin (`*`, or scheme://host[:port] with no path), or undefined. */
export function originProblem(s: string): string | undefined {
  if (s === "*") return undefined;
  const url = tryUrl(s);
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) return `${JSON.stringify(s)} is not an http(s) origin`;
  if (url.origin !== s) return `${JSON.stringify(s)} is not an origin; write it as ${JSON.stringify(url.origin)}`;
  return undefined;
}

/** Why `s` is not a redis:// or rediss:// URL, or undefined. */
export function redisUrlProblem(s: string): string | undefined {
  const url = tryUrl(s);
  if (url === undefined || (url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "") {
    return "must be a redis:// or rediss:// URL";
  }
  return undefined;
}

/** Why `s` is not a JWKS URL: https, or http to a loopback host (for tests and local runs). */
export function jwksUrlProblem(s: string): string | undefined {
  const url = tryUrl(s);
  if (url === undefined) return `${JSON.stringify(s)} is not a URL`;
  if (url.protocol === "https:") return undefined;
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
  if (url.protocol === "http:" && loopback) return undefined;
  return "must be an https:// URL (http:// only for localhost)";
}

function tryUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/**
 * One problem with the gateway's configuration. `path` locates it: a field
 * path in the config (`clusters[1].endpoints[0]`, lowerCamelCase), an
 * environment variable (`UPSTREAM_AUTH`), `yaml` for a syntax error, or the
 * config file's path when it cannot be read.
 */
export interface Violation {
  readonly path: string;
  readonly message: string;
}

/** Renders a violation as the one line `check-config` prints: `path: message`. */
export function formatViolation(v: Violation): string {
  return v.path === "" ? v.message : `${v.path}: ${v.message}`;
}

/**
 * Every violation of the gateway's configuration, listed at once. Thrown by
 * `loadGatewayConfig`; `gateway/main.ts` prints it and exits 1.
 */
export class GatewayConfigError extends Error {
  override name = "GatewayConfigError";

  constructor(
    readonly violations: readonly Violation[],
    readonly source: string,
  ) {
    const n = violations.length;
    super(
      `invalid gateway configuration (${source}), ${n} violation${n === 1 ? "" : "s"}:\n` +
        violations.map((v) => `  - ${formatViolation(v)}`).join("\n"),
    );
  }
}

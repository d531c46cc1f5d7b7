import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { formatViolation, GatewayConfigError } from "./gateway-config-error.js";
import { loadGatewayConfig } from "./load.js";

/** Where the command prints: process.stdout, or a test's collector. */
export interface Writer {
  write(chunk: string): unknown;
}

const USAGE = "usage: gateway --check-config [FILE]   (default: $GATEWAY_CONFIG, else gateway/gateway.yaml)\n";

/**
 * `gateway --check-config [FILE]`: loads FILE — default GATEWAY_CONFIG, else
 * the built-in gateway/gateway.yaml — with the environment overrides in `env`,
 * exactly as startup would, without serving. Prints
 * `config OK: N clusters, M filters` to `out` and returns 0; or prints every
 * violation, one `path: message` per line, to `err` and returns 1 (a missing
 * or unreadable file is one such line). A malformed command line returns 2.
 * `argv` may start with "--check-config" (as gateway/main.ts passes it) or not
 * (as `npm run gateway:check-config -- FILE` does).
 */
export function checkConfigCommand(argv: readonly string[], env: NodeJS.ProcessEnv, out: Writer, err: Writer = out): number {
  const args = argv[0] === "--check-config" ? argv.slice(1) : argv;
  if (args.length > 1 || args.some((a) => a.startsWith("-"))) {
    err.write(USAGE);
    return 2;
  }
  try {
    const cfg = loadGatewayConfig({ file: args[0], env });
    out.write(`config OK: ${count(cfg.clusters.length, "cluster")}, ${count(cfg.filters.length, "filter")}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof GatewayConfigError)) throw e;
    for (const v of e.violations) err.write(`${formatViolation(v)}\n`);
    return 1;
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** Whether this module is the script node was started with (`tsx gateway/config/check.ts`). */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  process.exitCode = checkConfigCommand(process.argv.slice(2), process.env, process.stdout, process.stderr);
}

import { createGrpcHealthProbe } from "../gateway/stats/grpc-health-probe.js";

/**
 * A container health check that needs nothing but the image (there is no
 * grpc_health_probe or curl in it), used by deploy/compose.yaml:
 *
 *   node dist/bin/health-check.js HOST:PORT         grpc.health.v1 Check of the whole server: exit 0 when SERVING
 *   node dist/bin/health-check.js http://HOST:PORT/PATH   HTTP GET: exit 0 on a 2xx reply (the gateway's admin /ready)
 *
 * Otherwise prints why to stderr and exits 1 (2 on a malformed command line).
 * Gives up after TIMEOUT_MS (default 2000, set with `--timeout-ms N`).
 */
const USAGE = "usage: health-check [--timeout-ms N] <host:port | http://host:port/path>\n";

function parseArgs(argv: readonly string[]): { target: string; timeoutMs: number } | undefined {
  const args = [...argv];
  let timeoutMs = 2_000;
  if (args[0] === "--timeout-ms") {
    timeoutMs = Number(args[1]);
    args.splice(0, 2);
  }
  if (args.length !== 1 || !Number.isInteger(timeoutMs) || timeoutMs <= 0) return undefined;
  return { target: args[0]!, timeoutMs };
}

async function checkHttp(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok ? undefined : `HTTP ${res.status}`;
  } catch (err) {
    return (err as Error).name === "TimeoutError" ? "timed out" : String((err as Error).cause ?? err);
  }
}

async function checkGrpc(address: string, timeoutMs: number): Promise<string | undefined> {
  const probe = createGrpcHealthProbe();
  try {
    const outcome = await probe.check(address, "", timeoutMs);
    return outcome.serving ? undefined : outcome.detail;
  } finally {
    probe.close();
  }
}

const args = parseArgs(process.argv.slice(2));
if (args === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = 2;
} else {
  const { target, timeoutMs } = args;
  const problem = /^https?:\/\//.test(target) ? await checkHttp(target, timeoutMs) : await checkGrpc(target, timeoutMs);
  if (problem !== undefined) process.stderr.write(`health-check ${target}: ${problem}\n`);
  process.exitCode = problem === undefined ? 0 : 1;
}

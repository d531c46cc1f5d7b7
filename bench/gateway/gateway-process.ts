/**
 * The contender of the gateway benchmark, in a process of its own: the real
 * gateway (`startGateway`, gateway/app.ts) configured by `gatewayYaml`, with
 * the benchmark's JWKS, its state embedded or in Redis, and its logger either
 * at "warn" (the access-log line is not written: as LOG_LEVEL=silent, but
 * warnings are still counted) or at "info" (one line per request, as in
 * production), writing synchronously to /dev/null like pino's default stdout
 * destination.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { JWK } from "jose";
import { startGateway } from "../../gateway/app.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { openGatewayState } from "../../gateway/state/open.js";
import { createLogger } from "../../lib/logger.js";
import { startTelemetry } from "../../lib/telemetry.js";
import { childInput, serveChild } from "./child.js";

// As in production (lib/run-service.ts): the OpenTelemetry SDK runs, so every request records its spans
// (exported only when OTEL_EXPORTER_OTLP_ENDPOINT is set, which the benchmark leaves unset).
const telemetry = startTelemetry({ serviceName: "gateway", env: process.env });
import { gatewayYaml, type GatewaySetup } from "./fixture.js";

export interface GatewayProcessInput extends GatewaySetup {
  readonly publicJwk: JWK;
  /** Redis URL of the gateway state; absent: embedded. */
  readonly redisUrl?: string;
  /** Key prefix in Redis, one per case so no case sees another's entries. */
  readonly keyPrefix: string;
  readonly logLevel: "warn" | "info";
}

/** Log lines above info (warnings, errors) seen so far, and the first few of them. */
export interface GatewayLogStats {
  readonly lines: number;
  readonly problems: number;
  readonly firstProblems: readonly string[];
}

const input = childInput<GatewayProcessInput>();
const devNull = openSync("/dev/null", "w");
const logStats = { lines: 0, problems: 0, firstProblems: [] as string[] };
const destination = {
  write(line: string) {
    logStats.lines++;
    if (!line.startsWith('{"level":30') && !line.startsWith('{"level":20') && !line.startsWith('{"level":10')) {
      logStats.problems++;
      if (logStats.firstProblems.length < 5) logStats.firstProblems.push(line.slice(0, 400));
    }
    writeSync(devNull, line);
  },
};
const logger = createLogger({ service: "gateway", level: input.logLevel, destination });

const cfg = loadGatewayConfig({ text: gatewayYaml(input), env: { GATEWAY_PORT: "0", GATEWAY_ADMIN_PORT: "0" } });
const state = input.redisUrl ? await openGatewayState({ url: input.redisUrl, keyPrefix: input.keyPrefix, logger }) : undefined;
const gateway = await startGateway({ ...cfg, listener: { ...cfg.listener, address: "127.0.0.1" } }, logger, {
  jwks: async () => ({ keys: [input.publicJwk] }),
  ...(state ? { state } : {}),
});

serveChild({ port: gateway.port, adminPort: gateway.adminPort }, { logs: (): GatewayLogStats => ({ ...logStats }) }, async () => {
  await gateway.stop();
  await state?.close();
  closeSync(devNull);
  await telemetry.shutdown();
});

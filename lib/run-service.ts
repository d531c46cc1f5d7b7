import { readFileSync } from "node:fs";
import { ConfigError } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { onShutdown } from "./shutdown.js";
import { spanExportStats, startTelemetry } from "./telemetry.js";

/** The mesh's release (package.json `version`): every process's `service.version`. */
export const MESH_VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

export interface ServiceEntry<C extends { LOG_LEVEL: string }> {
  /** `service.name` of spans and the `service` field of log lines. */
  readonly name: string;
  /** Validates the environment; throws ConfigError listing every violation. */
  readonly loadConfig: (env: Record<string, string | undefined>) => C;
  /** Serves the process; answers how to stop it. */
  readonly start: (config: C, logger: Logger) => Promise<{ stop(): Promise<void> }>;
}

/**
 * The `main` of every process: starts telemetry, reads and validates the
 * environment (exit 1 listing every violation), starts the service (exit 1
 * if it cannot), and stops it gracefully on SIGTERM/SIGINT, flushing spans
 * last. The only reader of `process.env`.
 */
export async function runService<C extends { LOG_LEVEL: string }>(entry: ServiceEntry<C>): Promise<void> {
  const telemetry = startTelemetry({ serviceName: entry.name, serviceVersion: MESH_VERSION, env: process.env });
  let config: C;
  try {
    config = entry.loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${entry.name}: ${err.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ service: entry.name, level: config.LOG_LEVEL });
  reportSpanLosses(logger);
  try {
    const service = await entry.start(config, logger);
    onShutdown(logger, [() => telemetry.shutdown(), () => service.stop()]);
  } catch (err) {
    logger.fatal({ err }, `${entry.name} failed to start`);
    await telemetry.shutdown();
    process.exit(1);
  }
}

/** Once a minute, a warning when spans were dropped (export queue full) or failed to export since the last one. */
function reportSpanLosses(logger: Logger): void {
  let last = spanExportStats();
  setInterval(() => {
    const now = spanExportStats();
    const dropped = now.dropped - last.dropped;
    const failed = now.failed - last.failed;
    last = now;
    if (dropped > 0 || failed > 0) {
      logger.warn({ spans_dropped: dropped, spans_failed: failed, spans_dropped_total: now.dropped, spans_failed_total: now.failed },
        "trace spans were lost in the last minute: the OTLP collector is slow or unreachable (requests are not affected)");
    }
  }, 60_000).unref();
}

import { readFileSync } from "node:fs";
import { ConfigError } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { onShutdown } from "./shutdown.js";
import { startTelemetry } from "./telemetry.js";

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
  try {
    const service = await entry.start(config, logger);
    onShutdown(logger, [() => telemetry.shutdown(), () => service.stop()]);
  } catch (err) {
    logger.fatal({ err }, `${entry.name} failed to start`);
    await telemetry.shutdown();
    process.exit(1);
  }
}

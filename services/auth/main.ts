import { ConfigError } from "../../lib/config.js";
import { createLogger } from "../../lib/logger.js";
import { onShutdown } from "../../lib/shutdown.js";
import { startTelemetry } from "../../lib/telemetry.js";
import { startAuthService } from "./app.js";
import { loadAuthConfig } from "./config.js";

// Entry point of the auth service: the only reader of process.env.
const telemetry = startTelemetry({ serviceName: "auth", env: process.env });
let config;
try {
  config = loadAuthConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`auth: ${err.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: "auth", level: config.LOG_LEVEL });
try {
  const service = await startAuthService(config, logger);
  onShutdown(logger, [() => telemetry.shutdown(), () => service.stop()]);
} catch (err) {
  logger.fatal({ err }, "auth service failed to start");
  await telemetry.shutdown();
  process.exit(1);
}

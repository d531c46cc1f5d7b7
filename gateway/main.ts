import { ConfigError } from "../lib/config.js";
import { runService } from "../lib/run-service.js";
import { startGateway } from "./app.js";
import { checkConfigCommand } from "./config/check.js";
import { GatewayConfigError } from "./config/gateway-config-error.js";
import { loadGatewayConfig } from "./config/load.js";

// `gateway --check-config [FILE]` validates the configuration and exits; otherwise the gateway serves.
if (process.argv.includes("--check-config")) {
  process.exitCode = checkConfigCommand(process.argv.slice(2), process.env, process.stdout, process.stderr);
} else {
  await runService({
    name: "gateway",
    loadConfig: (env) => {
      try {
        return { gateway: loadGatewayConfig({ env }), LOG_LEVEL: env.LOG_LEVEL ?? "info" };
      } catch (err) {
        if (err instanceof GatewayConfigError) throw new ConfigError(err.violations.map((v) => `${v.path}: ${v.message}`));
        throw err;
      }
    },
    start: (config, logger) => startGateway(config.gateway, logger),
  });
}

import { runService } from "../../lib/run-service.js";
import { startLoggingService } from "./app.js";
import { loadLoggingConfig } from "./config.js";

await runService({ name: "logging", loadConfig: loadLoggingConfig, start: startLoggingService });

import { runService } from "../../lib/run-service.js";
import { startAnalyticsService } from "./app.js";
import { loadAnalyticsConfig } from "./config.js";

await runService({ name: "analytics", loadConfig: loadAnalyticsConfig, start: startAnalyticsService });

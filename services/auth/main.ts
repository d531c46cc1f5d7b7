import { runService } from "../../lib/run-service.js";
import { startAuthService } from "./app.js";
import { loadAuthConfig } from "./config.js";

await runService({ name: "auth", loadConfig: loadAuthConfig, start: startAuthService });

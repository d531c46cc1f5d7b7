import { runService } from "../../lib/run-service.js";
import { startProjectService } from "./app.js";
import { loadProjectConfig } from "./config.js";

await runService({ name: "project", loadConfig: loadProjectConfig, start: startProjectService });

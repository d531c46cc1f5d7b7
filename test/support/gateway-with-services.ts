import { startGateway, type RunningGateway } from "../../gateway/app.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { createLogger } from "../../lib/logger.js";
import { startAnalyticsHarness, type AnalyticsHarness } from "./analytics-harness.js";
import { startAuthHarness, type AuthHarness } from "./auth-harness.js";
import { startProjectHarness, type ProjectHarness } from "./project-harness.js";

/** The four services (embedded stores) on loopback ports and a gateway in front of them, in this process. */
export interface GatewayWithServices {
  readonly auth: AuthHarness;
  readonly project: ProjectHarness;
  /** The analytics service with its logging service. */
  readonly analytics: AnalyticsHarness;
  readonly gateway: RunningGateway;
  /** `127.0.0.1:<port>` of the gateway's listener. */
  readonly gatewayAddress: string;
  stop(): Promise<void>;
}

/** Starts the services and a gateway with the built-in configuration pointed at them (a silent logger). */
export async function startGatewayWithServices(): Promise<GatewayWithServices> {
  const [auth, project, analytics] = await Promise.all([startAuthHarness(), startProjectHarness(), startAnalyticsHarness({ owned: {} })]);
  const cfg = loadGatewayConfig({ env: {
    GATEWAY_PORT: "0", GATEWAY_ADMIN_PORT: "0", UPSTREAM_AUTH: auth.address, UPSTREAM_PROJECT: project.address,
    UPSTREAM_LOGGING: analytics.logging.address, UPSTREAM_ANALYTICS: analytics.analytics.address,
  } });
  const gateway = await startGateway({ ...cfg, listener: { ...cfg.listener, address: "127.0.0.1" } }, createLogger({ service: "gateway", level: "silent" }));
  return {
    auth, project, analytics, gateway, gatewayAddress: `127.0.0.1:${gateway.port}`,
    async stop() {
      await gateway.stop();
      await Promise.all([auth.stop(), project.stop(), analytics.stop()]);
    },
  };
}

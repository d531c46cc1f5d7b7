import { z } from "zod";
import { commonEnv, optionalEnv, parseConfig, port } from "../../lib/config.js";

const targets = (fallback: string) => z.string().default(fallback).transform((s, ctx) => {
  const out: Record<string, string> = {};
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [name, address] = part.split("=");
    if (!name || !address || !/^[^:]+:\d+$/.test(address)) {
      ctx.addIssue({ code: "custom", message: `"${part}" must be name=host:port` });
      return z.NEVER;
    }
    out[name] = address;
  }
  return out;
});

/** Environment of the analytics service. Unset MONGO_URL → the embedded document store. */
export const AnalyticsEnv = z.object({
  ...commonEnv,
  ANALYTICS_PORT: port.default(50054),
  MONGO_URL: optionalEnv(z.string().regex(/^mongodb(\+srv)?:\/\//, "must be a mongodb:// URL")),
  MONGO_DB: z.string().regex(/^[A-Za-z0-9_-]{1,63}$/, "must be a database name").default("mesh"),
  PROJECT_ADDRESS: z.string().min(1).default("127.0.0.1:50052"),
  /** The logging service, whose records the rollups are built from. */
  LOGGING_ADDRESS: z.string().min(1).default("127.0.0.1:50053"),
  /** How often alert rules are evaluated. */
  ALERT_INTERVAL_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  /** How often new request records are folded into rollups. */
  ROLLUP_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
  /** Services whose health feeds the `uptime` metric: name=host:port, comma-separated. */
  HEALTH_TARGETS: targets("auth=127.0.0.1:50051,project=127.0.0.1:50052,logging=127.0.0.1:50053,analytics=127.0.0.1:50054"),
  HEALTH_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  ROLLUP_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
}).superRefine((e, ctx) => {
  if (e.NODE_ENV === "production" && !e.MONGO_URL) {
    ctx.addIssue({ code: "custom", path: ["MONGO_URL"], message: "is required in production (embedded stores are refused)" });
  }
});

export type AnalyticsConfig = Readonly<z.infer<typeof AnalyticsEnv>>;

/** Validates and freezes the analytics service's environment; throws ConfigError listing every violation. */
export function loadAnalyticsConfig(env: Record<string, string | undefined>): AnalyticsConfig {
  return parseConfig(AnalyticsEnv, env);
}

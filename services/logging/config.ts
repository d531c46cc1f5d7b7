import { z } from "zod";
import { commonEnv, optionalEnv, parseConfig, port } from "../../lib/config.js";

/** Environment of the logging service. Unset MONGO_URL → the embedded document store. */
export const LoggingEnv = z.object({
  ...commonEnv,
  LOGGING_PORT: port.default(50053),
  MONGO_URL: optionalEnv(z.string().regex(/^mongodb(\+srv)?:\/\//, "must be a mongodb:// URL")),
  MONGO_DB: z.string().regex(/^[A-Za-z0-9_-]{1,63}$/, "must be a database name").default("mesh"),
  PROJECT_ADDRESS: z.string().min(1).default("127.0.0.1:50052"),
  LOG_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  ERROR_MIN_STATUS: z.coerce.number().int().min(100).max(599).default(500),
  TAIL_POLL_MS: z.coerce.number().int().min(20).max(5_000).default(200),
}).superRefine((e, ctx) => {
  if (e.NODE_ENV === "production" && !e.MONGO_URL) {
    ctx.addIssue({ code: "custom", path: ["MONGO_URL"], message: "is required in production (embedded stores are refused)" });
  }
});

export type LoggingConfig = Readonly<z.infer<typeof LoggingEnv>>;

/** Validates and freezes the logging service's environment; throws ConfigError listing every violation. */
export function loadLoggingConfig(env: Record<string, string | undefined>): LoggingConfig {
  return parseConfig(LoggingEnv, env);
}

import { z } from "zod";
import { commonEnv, optionalEnv, parseConfig, port } from "../../lib/config.js";

/** Environment of the project service. Unset DATABASE_URL → embedded PGlite under DATA_DIR/project. */
export const ProjectEnv = z.object({
  ...commonEnv,
  PROJECT_PORT: port.default(50052),
  DATABASE_URL: optionalEnv(z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier").default("project"),
  DATA_DIR: z.string().default(".data"),
  /** How long key and route events are kept for watchers that reconnect. */
  EVENT_RETENTION_HOURS: z.coerce.number().int().min(1).max(24 * 90).default(24 * 7),
  /** How often noted API-key uses are written. */
  KEY_USAGE_FLUSH_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
}).superRefine((e, ctx) => {
  if (e.NODE_ENV === "production" && !e.DATABASE_URL) {
    ctx.addIssue({ code: "custom", path: ["DATABASE_URL"], message: "is required in production (embedded stores are refused)" });
  }
});

export type ProjectConfig = Readonly<z.infer<typeof ProjectEnv>>;

/** Validates and freezes the project service's environment; throws ConfigError listing every violation. */
export function loadProjectConfig(env: Record<string, string | undefined>): ProjectConfig {
  return parseConfig(ProjectEnv, env);
}

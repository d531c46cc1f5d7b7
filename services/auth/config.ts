import { z } from "zod";
import { commonEnv, csvList, optionalEnv, parseConfig, port } from "../../lib/config.js";

const jwkList = z.string().transform((s, ctx) => {
  try {
    const parsed: unknown = JSON.parse(s);
    if (Array.isArray(parsed) && parsed.every((k) => typeof k === "object" && k !== null)) return parsed as Record<string, unknown>[];
  } catch {
    // reported below
  }
  ctx.addIssue({ code: "custom", message: "must be a JSON array of private Ed25519 JWKs" });
  return z.NEVER;
});

const day = 86_400;

/** Environment of the auth service. Unset DATABASE_URL → embedded PGlite under DATA_DIR/auth. */
export const AuthEnv = z.object({
  ...commonEnv,
  AUTH_PORT: port.default(50051),
  DATABASE_URL: optionalEnv(z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier").default("auth"),
  DATA_DIR: z.string().default(".data"),
  JWT_ISSUER: z.string().min(1).default("mesh-auth"),
  JWT_AUDIENCE: z.string().min(1).default("mesh"),
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(900),
  REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(3_600).max(365 * day).default(30 * day),
  VERIFICATION_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(30 * day).default(day),
  RESET_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(day).default(3_600),
  ADMIN_EMAILS: csvList,
  PUBLIC_URL: z.string().url().default("http://localhost:8080"),
  AUTH_SIGNING_KEYS: optionalEnv(jwkList),
  AUTH_ACTIVE_KID: optionalEnv(z.string().min(1)),
  SIGNING_KEY_ROTATION_DAYS: z.coerce.number().int().min(1).max(365).default(30),
}).superRefine((e, ctx) => {
  if (e.NODE_ENV !== "production") return;
  if (!e.DATABASE_URL) ctx.addIssue({ code: "custom", path: ["DATABASE_URL"], message: "is required in production (embedded stores are refused)" });
  if (!e.AUTH_SIGNING_KEYS) ctx.addIssue({ code: "custom", path: ["AUTH_SIGNING_KEYS"], message: "is required in production" });
});

export type AuthConfig = Readonly<z.infer<typeof AuthEnv>>;

/** Validates and freezes the auth service's environment; throws ConfigError listing every violation. */
export function loadAuthConfig(env: Record<string, string | undefined>): AuthConfig {
  return parseConfig(AuthEnv, env);
}

import { z } from "zod";

/** Every violation of a process's configuration, listed at once. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly violations: readonly string[]) {
    super(`invalid configuration:\n  - ${violations.join("\n  - ")}`);
  }
}

/**
 * Parses `env` with `schema` and freezes the result. Throws ConfigError
 * listing every violation as `NAME: problem`. Each process's `config.ts` is
 * the only caller, and its `main.ts` the only reader of `process.env`.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): Readonly<z.infer<S>> {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join(".") || "(config)"}: ${i.message}`));
  }
  return Object.freeze(result.data) as Readonly<z.infer<S>>;
}

/** Treats an empty environment variable as unset, so `FOO=` does not count as a value. */
export function optionalEnv<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === "" ? undefined : v), schema.optional());
}

/** A comma-separated list, trimmed, empty entries dropped. */
export const csvList = z.preprocess(
  (v) => (typeof v === "string" ? v.split(",").map((s) => s.trim()).filter((s) => s !== "") : v ?? []),
  z.array(z.string()),
);

/** A TCP port number 0-65535 (0 picks a free port). */
export const port = z.coerce.number().int().min(0).max(65535);

/** Standard variables every process reads. */
export const commonEnv = {
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  HOST: z.string().default("127.0.0.1"),
  SHUTDOWN_DRAIN_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
};

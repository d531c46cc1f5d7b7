import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromJson } from "@bufbuild/protobuf";
import { parseDocument } from "yaml";
import { GatewayConfigSchema } from "../../gen/mesh/gateway/v1/config_pb.js";
import { checkJsonShape } from "./check-json-shape.js";
import { applyDefaults } from "./defaults.js";
import { applyEnvOverrides } from "./env-overrides.js";
import { GatewayConfigError, type Violation } from "./gateway-config-error.js";
import { MESH_SERVICES } from "./mesh-services.js";
import type { ResolvedGatewayConfig } from "./resolved-config.js";
import { validateGatewayConfig } from "./validate.js";

/** The built-in configuration, used when neither `file` nor GATEWAY_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL("../gateway.yaml", import.meta.url));

/** What `loadGatewayConfig` reads. */
export interface LoadGatewayConfigOptions {
  /** A YAML file. Default: env GATEWAY_CONFIG, else DEFAULT_CONFIG_FILE. */
  readonly file?: string;
  /** YAML to parse instead of reading a file; `file`, if given, then only names it in errors. */
  readonly text?: string;
  /** The process environment: GATEWAY_CONFIG, overrides (see applyEnvOverrides) and NODE_ENV. */
  readonly env: NodeJS.ProcessEnv;
  /** Services a cluster may serve. Default MESH_SERVICES (every service in gen/). */
  readonly knownServices?: ReadonlySet<string>;
}

/**
 * Reads the gateway's YAML config (schema: mesh.gateway.v1.GatewayConfig in
 * proto3 JSON form), applies the environment overrides and the defaults, and
 * checks it. Returns the deeply frozen result; throws GatewayConfigError
 * listing every violation (unknown keys, bad values, semantic rules, bad
 * environment values) at once, or the one reason the file cannot be read.
 */
export function loadGatewayConfig(opts: LoadGatewayConfigOptions): ResolvedGatewayConfig {
  const { text, source } = readSource(opts);
  const shape = checkJsonShape(GatewayConfigSchema, parseYaml(text, source));
  const violations: Violation[] = [...shape.violations];
  const cfg = fromJson(GatewayConfigSchema, shape.json); // cannot throw: the shape check dropped what it would reject
  violations.push(...applyEnvOverrides(cfg, opts.env));
  const resolved = applyDefaults(cfg);
  violations.push(...validateGatewayConfig(resolved, opts.knownServices ?? MESH_SERVICES));
  if (violations.length > 0) throw new GatewayConfigError(violations, source);
  return deepFreeze(resolved);
}

function readSource(opts: LoadGatewayConfigOptions): { text: string; source: string } {
  if (opts.text !== undefined) return { text: opts.text, source: opts.file ?? "inline config" };
  const file = opts.file ?? (opts.env.GATEWAY_CONFIG?.trim() || DEFAULT_CONFIG_FILE);
  try {
    return { text: readFileSync(file, "utf8"), source: file };
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
    throw new GatewayConfigError([{ path: file, message: `cannot read the config file: ${reason}` }], file);
  }
}

/** The YAML as plain data; every syntax error at once, with line and column. */
function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    // prettyErrors puts "at line L, column C:" at the end of the first line.
    const violations = doc.errors.map((e) => ({ path: "yaml", message: (e.message.split("\n")[0] ?? "").replace(/:$/, "") }));
    throw new GatewayConfigError(violations, source);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { GatewayConfigError, type Violation } from "./gateway-config-error.js";
import { DEFAULT_CONFIG_FILE, loadGatewayConfig } from "./load.js";

/** A config tree as YAML parses it, for tests to edit and feed back as JSON text. */
export type ConfigTree = Record<string, unknown> & { clusters: Record<string, unknown>[]; filters: Record<string, unknown>[] };

/** A fresh copy of gateway/gateway.yaml as data. */
export function baseTree(): ConfigTree {
  return parse(readFileSync(DEFAULT_CONFIG_FILE, "utf8")) as ConfigTree;
}

/** The GatewayConfigError `load` throws; fails the test if it throws none. */
export function errorOf(load: () => unknown): GatewayConfigError {
  try {
    load();
  } catch (e) {
    if (e instanceof GatewayConfigError) return e;
    throw e;
  }
  throw new Error("expected the config to be rejected, but it loaded");
}

/** The violations loading `tree` (or YAML text) with `env` reports; fails the test if it loads. */
export function violationsOf(tree: unknown, env: NodeJS.ProcessEnv = {}): readonly Violation[] {
  const text = typeof tree === "string" ? tree : JSON.stringify(tree);
  return errorOf(() => loadGatewayConfig({ text, env })).violations;
}

/** The filter entry of `tree` keyed `name` ("cors", "authn", ...): its config object, created if empty. */
export function filterIn(tree: ConfigTree, name: string): Record<string, unknown> {
  const entry = tree.filters.find((f) => name in f);
  if (entry === undefined) throw new Error(`no ${name} filter in the tree`);
  return ((entry[name] as Record<string, unknown> | null) ?? (entry[name] = {})) as Record<string, unknown>;
}

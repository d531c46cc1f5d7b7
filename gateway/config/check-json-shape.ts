import { fromJson, ScalarType, type DescEnum, type DescField, type DescMessage, type DescOneof, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { hasCustomJsonRepresentation } from "@bufbuild/protobuf/wkt";
import type { Violation } from "./gateway-config-error.js";

/** The input with every offending key or value left out, and what was wrong. */
export interface ShapeCheck {
  readonly json: JsonObject;
  readonly violations: readonly Violation[];
}

/**
 * Checks a parsed YAML/JSON tree against a message descriptor, reporting every
 * problem with its path — unknown keys (with a suggestion), values of the
 * wrong type, unknown enum values, a oneof set twice — where `fromJson` would
 * stop at the first. Keys may be the proto name or its lowerCamelCase JSON
 * name; enum values may drop their type prefix (`LEAST_REQUEST` for
 * `LB_POLICY_LEAST_REQUEST`). The returned tree is safe to give `fromJson`.
 */
export function checkJsonShape(desc: DescMessage, value: unknown): ShapeCheck {
  const violations: Violation[] = [];
  const json = walkMessage(desc, value ?? {}, "", violations) ?? {};
  return { json, violations };
}

function walkMessage(desc: DescMessage, value: unknown, path: string, out: Violation[]): JsonObject | undefined {
  if (!isRecord(value)) {
    // `- router` instead of `- router: {}` in the filter list is the likely slip
    const hint = desc.fields.some((f) => f.message !== undefined && (f.jsonName === value || f.name === value)) ? ` (write ${value}: {})` : "";
    out.push({ path, message: `expected a mapping of ${desc.name} fields, got ${render(value)}${hint}` });
    return undefined;
  }
  const result: JsonObject = {};
  const seen = new Map<DescField, string>();
  const oneofSeen = new Map<DescOneof, string>();
  for (const [key, v] of Object.entries(value)) {
    const at = join(path, key);
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) {
      out.push({ path: at, message: unknownField(desc, key) });
      continue;
    }
    const twin = seen.get(field);
    seen.set(field, key);
    if (twin !== undefined) {
      out.push({ path: at, message: `the same field as ${twin}; set it once` });
      continue;
    }
    if (v === null) continue; // proto3 JSON: null means "not set"
    if (field.oneof !== undefined) {
      const other = oneofSeen.get(field.oneof);
      if (other !== undefined) {
        out.push({ path: at, message: `conflicts with ${other}: set only one of ${field.oneof.fields.map((f) => f.jsonName).join(", ")}` });
        continue;
      }
      oneofSeen.set(field.oneof, key);
    }
    const checked = walkField(field, v, at, out);
    if (checked !== undefined) result[key] = checked;
  }
  return result;
}

function walkField(field: DescField, v: unknown, at: string, out: Violation[]): JsonValue | undefined {
  if (field.fieldKind === "list") {
    if (!Array.isArray(v)) {
      out.push({ path: at, message: `expected a list, got ${render(v)}` });
      return undefined;
    }
    const items = v.map((item: unknown, i) => walkValue(field, item, `${at}[${i}]`, out));
    return items.filter((item) => item !== undefined);
  }
  return walkValue(field, v, at, out);
}

/** One value of a singular field, or one element of a list field. */
function walkValue(field: DescField, v: unknown, at: string, out: Violation[]): JsonValue | undefined {
  if (field.enum !== undefined) return enumValue(field.enum, v, at, out);
  if (field.message !== undefined && !hasCustomJsonRepresentation(field.message) && field.fieldKind !== "map") {
    return walkMessage(field.message, v, at, out);
  }
  // Scalars and well-known types (Duration): let protobuf-es judge the value
  // so the rules are exactly proto3 JSON's.
  try {
    const probe = field.fieldKind === "list" ? [v] : v;
    fromJson(field.parent, { [field.jsonName]: probe as JsonValue });
    return v as JsonValue;
  } catch {
    out.push({ path: at, message: `expected ${expectation(field)}, got ${render(v)}` });
    return undefined;
  }
}

function enumValue(e: DescEnum, v: unknown, at: string, out: Violation[]): JsonValue | undefined {
  const hit = e.values.find((x) => x.name === v || x.localName === v || x.number === v);
  if (hit !== undefined) return hit.name;
  const names = e.values.filter((x) => x.number !== 0).map((x) => x.name);
  out.push({ path: at, message: `unknown value ${render(v)}; expected one of ${names.join(", ")}` });
  return undefined;
}

function expectation(field: DescField): string {
  if (field.message?.typeName === "google.protobuf.Duration") return 'a duration in seconds such as "5s" or "0.25s"';
  switch (field.scalar) {
    case ScalarType.STRING:
      return "a string";
    case ScalarType.BOOL:
      return "true or false";
    case ScalarType.UINT32:
      return "a whole number from 0 to 4294967295";
    case ScalarType.INT32:
      return "a whole number from -2147483648 to 2147483647";
    default:
      return `a value of type ${field.scalar === undefined ? field.message?.typeName : ScalarType[field.scalar].toLowerCase()}`;
  }
}

function unknownField(desc: DescMessage, key: string): string {
  const norm = (s: string) => s.toLowerCase().replaceAll("_", "");
  let best: { name: string; d: number } | undefined;
  for (const f of desc.fields) {
    const d = editDistance(norm(key), norm(f.jsonName));
    if (d <= 2 && (best === undefined || d < best.d)) best = { name: f.jsonName, d };
  }
  return best === undefined ? "unknown field" : `unknown field (did you mean ${best.name}?)`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value as it reads in a message: JSON, cut short. */
export function render(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (isRecord(v)) return "a mapping";
  if (typeof v === "number" || typeof v === "bigint") return String(v); // JSON has no Infinity
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `join("a", "b")` → "a.b"; `join("", "b")` → "b". */
export function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

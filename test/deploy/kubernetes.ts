import { execFileSync } from "node:child_process";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

/** The repository's root. */
export const root = join(import.meta.dirname, "..", "..");

/** A rendered Kubernetes object, loosely typed: the tests read what they check. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** `kubectl kustomize <dir>` (offline), parsed. Throws with kubectl's message when it cannot render. */
export function render(dir: string): KubeObject[] {
  const out = execFileSync("kubectl", ["kustomize", join(root, dir)], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
  return parseAllDocuments(out).map((d) => {
    if (d.errors.length > 0) throw new Error(`${dir}: ${d.errors.map((e) => e.message).join("; ")}`);
    return d.toJS() as KubeObject;
  }).filter((o) => o !== null);
}

/** `<kind>/<name>`, for messages. */
export const idOf = (o: KubeObject) => `${o.kind}/${o.metadata.name}`;

/**
 * Every violation of the Kubernetes OpenAPI schema for the object's kind: types, formats and required fields
 * (the validators `kubernetes-models` generates from the schema), and every field the schema does not know
 * (walked over the field tables `@kubernetes/client-node` generates from the same schema; the API server would
 * reject or, worse, silently drop them). Empty when the object is valid.
 */
export async function schemaViolations(o: KubeObject): Promise<string[]> {
  const out: string[] = [];
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") as [string, string] : ["", o.apiVersion];
  let model: { new(data: unknown): { validate(): void } };
  try {
    const module = await import(`kubernetes-models/${group ? `${group}/` : ""}${version}/${o.kind}`) as Record<string, typeof model>;
    model = module[o.kind]!;
  } catch {
    return [`${o.apiVersion} ${o.kind} is not a kind of this Kubernetes version`];
  }
  try {
    new model(o).validate();
  } catch (err) {
    out.push(...String((err as Error).message).split("\n").filter(Boolean));
  }
  const typeName = `${version.charAt(0).toUpperCase()}${version.slice(1)}${o.kind}`;
  unknownFields(o, typeName, "", out);
  return out;
}

type FieldTable = readonly { name: string; baseName: string; type: string }[];
const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => FieldTable } | undefined>;

/** Pushes the path of every field of `value` that type `type` does not declare, recursively. */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}.${k}`, out);
    return;
  }
  const table = models[type]?.getAttributeTypeMap?.();
  if (!table || typeof value !== "object" || Array.isArray(value)) return; // scalars, IntOrString, any
  const fields = new Map(table.map((f) => [f.baseName, f.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = fields.get(k);
    if (t === undefined) out.push(`${path ? `${path}.` : ""}${k}: unknown field (not in ${type})`);
    else unknownFields(v, t, `${path ? `${path}.` : ""}${k}`, out);
  }
}

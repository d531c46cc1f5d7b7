// A JSON Schema 2020-12 validator over a document's components (imported by *.test.ts only).
import { Ajv2020 } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import type { JsonSchema } from "./spec-types.js";

const BASE = "https://mesh.invalid/openapi.json";

/** Validates values against component schemas, `$ref`s resolved among them. */
export interface ComponentValidator {
  /** The error messages of `value` against the component `name` (e.g. "mesh.auth.v1.User"); empty when valid. */
  errors(name: string, value: unknown): string[];
  /** The same against an inline schema that may `$ref` components. */
  errorsOf(schema: JsonSchema, value: unknown): string[];
}

/**
 * A strict Ajv (unknown keywords and formats are compile errors, so every
 * schema must be valid 2020-12 with known formats; `required` naming a
 * property declared elsewhere, as `dependentSchemas` does, is allowed) over
 * `schemas`. The
 * OpenAPI refs `#/components/schemas/X` are rewritten to `$defs`.
 */
export function componentValidator(schemas: Readonly<Record<string, JsonSchema>>): ComponentValidator {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  (formats as unknown as { default: (a: Ajv2020) => void }).default(ajv);
  ajv.addFormat("uint32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff });
  ajv.addFormat("uint64", /^[0-9]+$/);
  const rewrite = (s: unknown) => JSON.parse(JSON.stringify(s).replaceAll('"#/components/schemas/', `"${BASE}#/$defs/`)) as object;
  ajv.addSchema({ $id: BASE, $defs: rewrite(schemas) });
  const check = (schema: object, value: unknown) => {
    const validate = ajv.compile(schema);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`);
  };
  return {
    errors: (name, value) => check({ $ref: `${BASE}#/$defs/${name}` }, value),
    errorsOf: (schema, value) => check(rewrite(schema), value),
  };
}

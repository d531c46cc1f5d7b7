import { STATUS_CODES } from "node:http";
import type { DescMethod } from "@bufbuild/protobuf";
import { Access, methodPolicy } from "../../lib/policy.js";
import type { HttpBinding } from "../transcoding/bindings.js";
import { successStatus } from "../transcoding/response.js";
import { cacheHeaders, commonHeaders, ERROR_ENVELOPE, errorEnvelopeSchema, errorResponseComponents, errorResponseRefs, responseHeaders } from "./error-responses.js";
import { openApiPath, type OpenApiPath } from "./openapi-path.js";
import { queryParameters } from "./query-parameters.js";
import { createSchemaRegistry, enumSchema, scalarSchema, type SchemaRegistry } from "./schema.js";
import {
  PATH_ITEM_METHODS, type JsonSchema, type OpenApiDocument, type Operation, type Parameter, type PathItem,
  type MediaType, type PathItemMethod, type RequestBody, type Response, type SecurityRequirement, type Tag, type UnlistedBinding,
} from "./spec-types.js";

/** What the document says about itself. */
export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
  /** The base URL clients reach the gateway at; left out, Swagger UI uses the page's own origin. */
  readonly serverUrl?: string;
}

/** Who may call, as OpenAPI security requirements; access levels missing here are refused by the gateway and not listed. */
const SECURITY: Partial<Record<Access, SecurityRequirement[]>> = {
  [Access.PUBLIC]: [],
  [Access.USER]: [{ bearerAuth: [] }],
  [Access.API_KEY]: [{ apiKeyAuth: [] }],
  [Access.USER_OR_API_KEY]: [{ bearerAuth: [] }, { apiKeyAuth: [] }],
};

const STREAM_NOTE = "A server stream. With `Accept: text/event-stream`: one SSE `data:` event per message, a failure as a "
  + "final `event: error` whose data is the error envelope. Otherwise NDJSON: one message per line, a failure as a final "
  + '`{"error": <envelope>}` line. The schema is that of one message.';

/**
 * The OpenAPI 3.1.0 document of the REST surface the bindings describe
 * (`bindingsOf(services)`): one operation per binding the gateway admits
 * (access PUBLIC, USER, API_KEY or USER_OR_API_KEY; INTERNAL, undeclared
 * and rule-less methods never appear), tagged by service short name. Its
 * operationId is `Service_Method`, with `_N` for the method's Nth
 * additional binding. Paths of the same shape merge into one path item
 * under the first one's parameter names (OpenAPI forbids two); a binding
 * whose method is then taken is listed in `x-unlistedBindings` instead.
 * Message schemas are components keyed by full type name (schema.ts).
 */
export function openApiDocument(bindings: readonly HttpBinding[], info: OpenApiInfo): OpenApiDocument {
  const registry = createSchemaRegistry();
  const paths: Record<string, PathItem> = {};
  const pathsByShape = new Map<string, OpenApiPath>();
  const tags = new Map<string, Tag>();
  const ids = new Set<string>();
  const perMethod = new Map<DescMethod, number>();
  const unlisted: UnlistedBinding[] = [];
  for (const b of bindings) {
    const security = SECURITY[methodPolicy(b.method).access];
    if (security === undefined) continue;
    const n = perMethod.get(b.method) ?? 0;
    perMethod.set(b.method, n + 1);
    const operationId = uniqueId(`${b.service.name}_${b.method.name}${n === 0 ? "" : `_${n}`}`, ids);
    const own = openApiPath(b.template, (fieldPath) => jsonPath(b, fieldPath));
    const key = pathsByShape.get(own.shape) ?? own;
    pathsByShape.set(own.shape, key);
    const op = operationOf(b, { operationId, n, security: structuredClone(security), own, key }, registry);
    if (!place((paths[key.path] ??= {}), b.verb, op)) {
      unlisted.push({ operationId, method: b.verb, template: b.template.source, reason: `${b.verb} ${key.path} is already taken` });
      continue;
    }
    tags.set(b.service.name, { name: b.service.name, description: `gRPC service \`${b.service.typeName}\`.` });
  }
  return {
    openapi: "3.1.0",
    info: { title: info.title, version: info.version, ...(info.description !== undefined && { description: info.description }) },
    ...(info.serverUrl !== undefined && { servers: [{ url: info.serverUrl }] }),
    tags: [...tags.values()],
    paths,
    components: componentsOf(registry),
    ...(unlisted.length > 0 && { "x-unlistedBindings": unlisted }),
  };
}

function componentsOf(registry: SchemaRegistry): OpenApiDocument["components"] {
  const schemas = Object.fromEntries(Object.entries(registry.schemas).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    schemas: { ...schemas, [ERROR_ENVELOPE]: errorEnvelopeSchema },
    responses: errorResponseComponents(),
    headers: { ...responseHeaders },
    securitySchemes: {
      bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "A user's access token: `Authorization: Bearer <accessToken>`." },
      apiKeyAuth: { type: "apiKey", in: "header", name: "x-api-key", description: "A project's API key (`gw_…`)." },
    },
  };
}

/** A path variable's name: its field path in lowerCamelCase JSON names (`projectId`, `item.name`). */
function jsonPath(b: HttpBinding, fieldPath: readonly string[]): string {
  const fields = b.pathFields.get(fieldPath.join("."));
  return fields === undefined ? fieldPath.join(".") : fields.map((f) => f.jsonName).join(".");
}

function uniqueId(base: string, ids: Set<string>): string {
  let id = base;
  for (let i = 2; ids.has(id); i++) id = `${base}_${i}`;
  ids.add(id);
  return id;
}

/** Puts `op` under its method in `item`; false when the method is taken. Custom methods go to `x-additionalOperations`. */
function place(item: PathItem, verb: string, op: Operation): boolean {
  const lower = verb.toLowerCase();
  if (verb === verb.toUpperCase() && (PATH_ITEM_METHODS as readonly string[]).includes(lower)) {
    const m = lower as PathItemMethod;
    if (item[m] !== undefined) return false;
    item[m] = op;
    return true;
  }
  const extra = (item["x-additionalOperations"] ??= {});
  if (extra[verb] !== undefined) return false;
  extra[verb] = op;
  return true;
}

interface OperationContext {
  readonly operationId: string;
  /** 0 for the rule itself, N for its Nth additional binding. */
  readonly n: number;
  readonly security: SecurityRequirement[];
  /** The binding's own path, and the path it is listed under (same shape, maybe other names). */
  readonly own: OpenApiPath;
  readonly key: OpenApiPath;
}

function operationOf(b: HttpBinding, ctx: OperationContext, registry: SchemaRegistry): Operation {
  const notes = [`gRPC \`${b.service.typeName}/${b.method.name}\`${ctx.n === 0 ? "" : `, additional HTTP binding ${ctx.n}`}.`];
  if (b.method.methodKind === "server_streaming") notes.push(STREAM_NOTE);
  const requestBody = requestBodyOf(b, registry);
  return {
    operationId: ctx.operationId,
    tags: [b.service.name],
    summary: b.method.name,
    description: notes.join("\n\n"),
    ...(b.method.deprecated && { deprecated: true }),
    parameters: [...pathParameters(b, ctx), ...queryParameters(b)],
    ...(requestBody && { requestBody }),
    responses: { [String(successStatus(b.method))]: successResponse(b, registry), ...errorResponseRefs() },
    security: ctx.security,
  };
}

function pathParameters(b: HttpBinding, { own, key }: OperationContext): Parameter[] {
  return own.variables.map((v, i) => {
    const name = key.variables[i]?.name ?? v.name;
    const leaf = v.fieldPath === undefined ? undefined : b.pathFields.get(v.fieldPath)?.at(-1);
    const schema: JsonSchema = leaf?.fieldKind === "scalar" ? scalarSchema(leaf.scalar)
      : leaf?.fieldKind === "enum" ? enumSchema(leaf.enum) : { type: "string" };
    if (v.pattern !== undefined && schema.type === "string") schema.pattern = v.pattern;
    const notes: string[] = [];
    if (name !== v.name) notes.push(`Sets the request field \`${v.name}\`.`);
    if (v.fieldPath === undefined) notes.push(`Matches \`${v.matches}\`; not passed to the service.`);
    else if (v.multiSegment) notes.push(`Matches \`${v.matches}\`, slashes included: send them as they are, not as %2F.`);
    const { description, ...bare } = schema;
    if (description !== undefined) notes.push(description);
    return { name, in: "path", required: true, ...(notes.length > 0 && { description: notes.join(" ") }), schema: bare };
  });
}

function requestBodyOf(b: HttpBinding, registry: SchemaRegistry): RequestBody | undefined {
  if (b.body === "") return undefined;
  const field = b.bodyField;
  const notes = [field === undefined
    ? "The whole request message; fields also in the path must match it. An absent body is `{}`."
    : `The request field \`${field.jsonName}\`.`];
  if (b.autoUpdateMask !== undefined) {
    notes.push(`Without an \`${b.autoUpdateMask.jsonName}\` query parameter, only the fields present in the body are changed.`);
  }
  const schema = field === undefined ? registry.message(b.method.input) : registry.field(field);
  return { description: notes.join(" "), required: false, content: { "application/json": { schema } } };
}

function successResponse(b: HttpBinding, registry: SchemaRegistry): Response {
  const status = successStatus(b.method);
  const schema = b.responseBodyField === undefined ? registry.message(b.method.output) : registry.field(b.responseBodyField);
  const stream = b.method.methodKind === "server_streaming";
  const content: Record<string, MediaType> = stream
    ? { "text/event-stream": { schema }, "application/x-ndjson": { schema: structuredClone(schema) } }
    : { "application/json": { schema } };
  return {
    description: `${STATUS_CODES[status] ?? "Success"}${b.responseBodyField ? ` (the response's \`${b.responseBodyField.jsonName}\`)` : ""}`,
    headers: { ...commonHeaders(), ...(b.verb === "GET" && !stream ? cacheHeaders() : {}) },
    content,
  };
}

// The subset of OpenAPI 3.1 (https://spec.openapis.org/oas/v3.1.0) and JSON
// Schema 2020-12 the gateway's document uses, typed so that building and
// testing it is checked by the compiler.

/** A JSON Schema 2020-12 object (OpenAPI 3.1 Schema Object), with the keywords the mapping uses. */
export interface JsonSchema {
  $ref?: string;
  title?: string;
  description?: string;
  type?: string | string[];
  format?: string;
  pattern?: string;
  contentEncoding?: string;
  enum?: (string | null)[];
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  dependentSchemas?: Record<string, JsonSchema>;
  not?: JsonSchema;
  anyOf?: JsonSchema[];
  deprecated?: boolean;
}

/** `{ $ref }` to a component. */
export interface Ref {
  $ref: string;
}

export interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required: boolean;
  description?: string;
  deprecated?: boolean;
  style?: "simple" | "form";
  explode?: boolean;
  schema: JsonSchema;
}

export interface Header {
  description: string;
  schema: JsonSchema;
}

export interface MediaType {
  schema: JsonSchema;
}

export interface RequestBody {
  description?: string;
  required: boolean;
  content: Record<string, MediaType>;
}

export interface Response {
  description: string;
  headers?: Record<string, Header | Ref>;
  content?: Record<string, MediaType>;
}

/** Scheme name → scopes (always empty here). An empty list of these means "no credentials". */
export type SecurityRequirement = Record<string, string[]>;

export interface Operation {
  operationId: string;
  tags: string[];
  summary: string;
  description: string;
  deprecated?: boolean;
  parameters: Parameter[];
  requestBody?: RequestBody;
  responses: Record<string, Response | Ref>;
  security: SecurityRequirement[];
}

/** The HTTP methods a Path Item has a fixed field for. */
export const PATH_ITEM_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
export type PathItemMethod = (typeof PATH_ITEM_METHODS)[number];

/**
 * A Path Item. Operations of a custom HTTP method (`custom: { kind: "SEARCH" }`),
 * which OpenAPI 3.1 has no field for, sit under `x-additionalOperations` by
 * method name: the shape OpenAPI 3.2 gives them as `additionalOperations`.
 */
export type PathItem = { [M in PathItemMethod]?: Operation } & { "x-additionalOperations"?: Record<string, Operation> };

export interface SecurityScheme {
  type: "http" | "apiKey";
  description: string;
  scheme?: string;
  bearerFormat?: string;
  in?: "header";
  name?: string;
}

export interface Tag {
  name: string;
  description: string;
}

/** A binding OpenAPI cannot show: its path and method are taken by another operation with an equivalent path. */
export interface UnlistedBinding {
  operationId: string;
  method: string;
  template: string;
  reason: string;
}

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description?: string };
  servers?: { url: string }[];
  tags: Tag[];
  paths: Record<string, PathItem>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses: Record<string, Response>;
    headers: Record<string, Header>;
    securitySchemes: Record<string, SecurityScheme>;
  };
  "x-unlistedBindings"?: UnlistedBinding[];
}

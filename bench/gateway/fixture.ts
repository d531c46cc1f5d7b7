/**
 * What every contender of the gateway benchmark serves: one project (as the
 * ProjectService double's GetProject answers it — as JSON through the
 * gateway, as the raw gRPC call and answer through the bare gRPC proxy — and
 * as the plain HTTP upstream renders it), the access tokens the gateway
 * verifies, and the gateway's configuration for a case.
 */
import { create, toBinary, toJson, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { JWK } from "jose";
import {
  GetProjectRequestSchema, GetProjectResponseSchema, ProjectSchema, type Project,
} from "../../gen/mesh/project/v1/project_pb.js";
import { generateSigningKey, keyringFromConfig } from "../../services/auth/domain/keyring.js";
import { issueAccessToken } from "../../services/auth/domain/tokens.js";

/** The project every request reads: `GET /api/v1/projects/{id}`. */
export const PROJECT_ID = "prj_3f9c2a7b41d0";
export const PROJECT_PATH = `/api/v1/projects/${PROJECT_ID}`;

const CREATED_MS = Date.UTC(2026, 10, 20, 9, 30, 0);
const UPDATED_MS = Date.UTC(2026, 10, 21, 14, 5, 0);
const NAME = "checkout-api";
const DESCRIPTION = "Payments and order checkout for the storefront, owned by the commerce team.";

/** The project as the gRPC double answers it (a new message per call, as a service builds one). */
export function projectMessage(id: string): Project {
  return create(ProjectSchema, {
    id, name: NAME, description: DESCRIPTION, createdAt: timestampFromMs(CREATED_MS), updatedAt: timestampFromMs(UPDATED_MS),
  });
}

/** The project as the HTTP upstream renders it: a plain object, the same proto3 JSON the gateway produces. */
export function projectJson(id: string): Record<string, string> {
  return {
    id, name: NAME, description: DESCRIPTION,
    createdAt: new Date(CREATED_MS).toISOString().replace(".000Z", "Z"), updatedAt: new Date(UPDATED_MS).toISOString().replace(".000Z", "Z"),
  };
}

/** The body both contenders must answer, byte for byte (the gateway's rendering of the message). */
export const EXPECTED_BODY = JSON.stringify(toJson(ProjectSchema, projectMessage(PROJECT_ID), { alwaysEmitImplicit: true }));
if (EXPECTED_BODY !== JSON.stringify(projectJson(PROJECT_ID))) throw new Error("the HTTP upstream's JSON differs from the gateway's rendering");

/** The gRPC method the gateway's (a) calls on the upstream, and the bare gRPC proxy's clients call through it. */
export const GET_PROJECT_PATH = "/mesh.project.v1.ProjectService/GetProject";

/** One gRPC length-prefixed message: flag 0 (not compressed), 4-byte big-endian length, the protobuf bytes. */
function grpcFrame<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Buffer {
  const bytes = toBinary(schema, create(schema, init));
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

/** The GetProject request body the bare gRPC proxy's clients send (`{ id: PROJECT_ID }`), pre-encoded. */
export const GET_PROJECT_REQUEST_FRAME = grpcFrame(GetProjectRequestSchema, { id: PROJECT_ID });
/** The answer's body, byte for byte: the upstream serializes the double's message with the same `toBinary`. */
export const GET_PROJECT_RESPONSE_FRAME = grpcFrame(GetProjectResponseSchema, { project: projectMessage(PROJECT_ID) });

/** The auth service's defaults (services/auth/config.ts), which the gateway's authn filter expects by default. */
const TOKEN_SETTINGS = { issuer: "mesh-auth", audience: "mesh", ttlSeconds: 3600 };

export interface Credentials {
  /** The public JWK the gateway verifies with (its `overrides.jwks`). */
  readonly publicJwk: JWK;
  /** `count` access tokens of one user, each with its own `jti`. */
  readonly tokens: readonly string[];
}

/**
 * A fresh Ed25519 signing key in the auth service's format and `count`
 * access tokens signed with it the way the auth service signs them
 * (`issueAccessToken`: EdDSA, `kid`, iss, aud, sub, jti, iat, exp, roles).
 */
export async function makeCredentials(count: number): Promise<Credentials> {
  const key = await generateSigningKey(new Date());
  const keyring = await keyringFromConfig([key.privateJwk as JWK]);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push((await issueAccessToken(keyring, TOKEN_SETTINGS, { userId: "usr_bench0001", roles: ["user"] }, new Date())).token);
  }
  return { publicJwk: keyring.publicJwks()[0]!, tokens };
}

/** How a gateway case is configured. */
export interface GatewaySetup {
  /** The upstream's gRPC address (every cluster points at it). */
  readonly upstream: string;
  /** Response cache TTL of GET routes (0: the built-in default, no caching). */
  readonly cacheTtlSeconds: number;
  /** The access-log filter, which ships every request's record to the logging service. */
  readonly shipAccessLog: boolean;
}

/**
 * The gateway's YAML: the built-in configuration's filter chain (request id,
 * CORS, access log when shipping, authn, API key, rate limit, cache, router),
 * with the user tier's limit raised to 6,000,000 a minute (far above what a run sends), and the
 * cache TTL of the case.
 */
export function gatewayYaml(s: GatewaySetup): string {
  const clusters = [
    ["auth", "mesh.auth.v1.AuthService"], ["project", "mesh.project.v1.ProjectService"],
    ["logging", "mesh.logging.v1.LoggingService"], ["analytics", "mesh.analytics.v1.AnalyticsService"],
  ].map(([name, service]) => `  - { name: ${name}, services: [${service}], endpoints: ["${s.upstream}"] }`);
  return [
    "clusters:", ...clusters,
    "filters:",
    "  - requestId: {}",
    "  - cors: { allowedOrigins: [http://localhost:3000, http://localhost:5173] }",
    ...(s.shipAccessLog ? ["  - accessLog: {}"] : []),
    "  - authn: { jwksCluster: auth }",
    "  - apiKey: {}",
    "  - rateLimit: { user: { limit: 6000000, period: 60s } }", // 100,000/s: GCRA's interval stays 10 µs, the run never reaches it
    `  - cache: { defaultTtl: ${s.cacheTtlSeconds}s }`,
    "  - router: {}",
    "",
  ].join("\n");
}

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, type Client } from "@connectrpc/connect";
import { importJWK, type JWK } from "jose";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { createLogger } from "../../lib/logger.js";
import { startAuthService } from "../../services/auth/app.js";
import { loadAuthConfig } from "../../services/auth/config.js";
import { generateSigningKey } from "../../services/auth/domain/keyring.js";
import type { Mail } from "../../services/auth/domain/outbox.js";
import { uniqueSchema } from "./integration.js";
import { dropSchema } from "./relational.js";

export interface AuthHarness {
  readonly address: string;
  readonly client: Client<typeof AuthService>;
  /** The configured signing key (private JWK), to forge tokens the service must refuse. */
  readonly signingKey: { kid: string; key: CryptoKey };
  readonly issuer: string;
  readonly audience: string;
  /** Moves the service's clock. */
  advance(ms: number): void;
  /** Waits (bounded) for the next mail of `template` to `to` and answers its token. */
  mailedToken(to: string, template: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts the real auth service on a loopback port (embedded PGlite, or the
 * PostgreSQL at `databaseUrl` in a fresh schema), with a capturing mailer and
 * a settable clock, and a generated client talking to it over gRPC.
 */
export async function startAuthHarness(opts: { databaseUrl?: string; adminEmails?: string[] } = {}): Promise<AuthHarness> {
  const dataDir = await mkdtemp(join(tmpdir(), "mesh-auth-"));
  const schema = opts.databaseUrl ? uniqueSchema("auth_e2e") : undefined;
  const key = await generateSigningKey(new Date());
  const config = loadAuthConfig({
    AUTH_PORT: "0", DATA_DIR: dataDir, DATABASE_URL: opts.databaseUrl, DATABASE_SCHEMA: schema, LOG_LEVEL: "silent",
    AUTH_SIGNING_KEYS: JSON.stringify([key.privateJwk]), ADMIN_EMAILS: (opts.adminEmails ?? []).join(","),
  });
  let offset = 0;
  const mails: Mail[] = [];
  const service = await startAuthService(config, createLogger({ service: "auth", level: "silent" }), {
    now: () => new Date(Date.now() + offset),
    mailer: { send: async (m) => void mails.push(m) },
    outboxIntervalMs: 20,
  });
  const address = `127.0.0.1:${service.port}`;
  const transport = createGrpcTransport({ address });
  return {
    address,
    client: createClient(AuthService, transport),
    signingKey: { kid: key.kid, key: (await importJWK(key.privateJwk as JWK, "EdDSA")) as CryptoKey },
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    advance: (ms) => { offset += ms; },
    async mailedToken(to, template) {
      for (let i = 0; i < 250; i++) {
        const index = mails.findIndex((m) => m.to === to && m.template === template);
        if (index >= 0) {
          const [mail] = mails.splice(index, 1);
          return new URL(mail!.payload.link!).searchParams.get("token")!;
        }
        await sleep(20);
      }
      throw new Error(`no ${template} mail to ${to} within 5 s`);
    },
    async stop() {
      transport.close();
      await service.stop();
      await rm(dataDir, { recursive: true, force: true });
      if (opts.databaseUrl && schema) await dropSchema(opts.databaseUrl, schema);
    },
  };
}

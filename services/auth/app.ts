import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { JWK } from "jose";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { createServerErrorInterceptor } from "../../lib/grpc/interceptors.js";
import { createGrpcServer, serviceRegistration } from "../../lib/grpc/server.js";
import type { Logger } from "../../lib/logger.js";
import { loadMigrations, migrate } from "../../lib/stores/migrate.js";
import { openRelationalStore } from "../../lib/stores/postgres.js";
import type { AuthConfig } from "./config.js";
import { createAuthDomain, normalizeEmail } from "./domain/auth-domain.js";
import { keyringFromConfig, loadStoredKeyring } from "./domain/keyring.js";
import { createOutboxDispatcher, createLogMailer, type Mailer } from "./domain/outbox.js";
import { createArgon2Hasher, type PasswordHasher } from "./domain/passwords.js";
import { createPostgresAuthStore } from "./storage/postgres.js";
import { createAuthenticateInterceptor } from "./transport/authenticate.js";
import { createAuthServiceImpl } from "./transport/auth-service.js";

export interface AuthServiceOverrides {
  /** Replaces the log mailer (tests capture mail with it). */
  readonly mailer?: Mailer;
  readonly hasher?: PasswordHasher;
  readonly now?: () => Date;
  /** Outbox poll interval; default 1 s. */
  readonly outboxIntervalMs?: number;
}

export interface RunningAuthService {
  readonly port: number;
  /** Stops accepting, drains calls, stops the outbox and closes the store. */
  stop(): Promise<void>;
}

const migrationsDir = join(import.meta.dirname, "storage", "migrations");

/** Wires the auth service from its config and serves it. */
export async function startAuthService(config: AuthConfig, logger: Logger, overrides: AuthServiceOverrides = {}): Promise<RunningAuthService> {
  const now = overrides.now ?? (() => new Date());
  const db = await openRelationalStore({
    url: config.DATABASE_URL, dataDir: config.DATABASE_URL ? undefined : join(config.DATA_DIR, "auth", "pg"),
    schema: config.DATABASE_SCHEMA, logger,
  });
  try {
    const applied = await migrate(db.pool, "auth", await loadMigrations(migrationsDir));
    if (applied.length > 0) logger.info({ applied }, "applied migrations");
    const store = createPostgresAuthStore(db.pool);
    const keyring = config.AUTH_SIGNING_KEYS
      ? await keyringFromConfig(config.AUTH_SIGNING_KEYS as JWK[], config.AUTH_ACTIVE_KID)
      : await loadStoredKeyring({ store, now, rotateAfterMs: config.SIGNING_KEY_ROTATION_DAYS * 86_400_000, accessTokenTtlMs: config.ACCESS_TOKEN_TTL_SECONDS * 1000 });
    const domain = createAuthDomain({
      store, keyring, now, newId: randomUUID, hasher: overrides.hasher ?? createArgon2Hasher(),
      settings: {
        issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE, accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
        refreshTokenTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS, verificationTokenTtlSeconds: config.VERIFICATION_TOKEN_TTL_SECONDS,
        resetTokenTtlSeconds: config.RESET_TOKEN_TTL_SECONDS, adminEmails: new Set(config.ADMIN_EMAILS.map(normalizeEmail)),
        publicUrl: config.PUBLIC_URL,
      },
    });
    const outbox = createOutboxDispatcher({ store, mailer: overrides.mailer ?? createLogMailer(logger), now, logger });
    outbox.start(overrides.outboxIntervalMs);
    const server = createGrpcServer({
      services: [serviceRegistration(AuthService, createAuthServiceImpl(domain))],
      interceptors: [createServerErrorInterceptor(logger), createAuthenticateInterceptor(domain)],
    });
    const port = await server.listen(config.HOST, config.AUTH_PORT);
    logger.info({ host: config.HOST, port, store: db.kind }, "auth service listening");
    return {
      port,
      async stop() {
        await server.shutdown(config.SHUTDOWN_DRAIN_MS);
        await outbox.stop();
        await db.close();
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

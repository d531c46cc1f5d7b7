import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createNotifier } from "../../lib/event-feed.js";
import { createServerErrorInterceptor } from "../../lib/grpc/interceptors.js";
import { createGrpcServer, serviceRegistration } from "../../lib/grpc/server.js";
import type { Logger } from "../../lib/logger.js";
import { loadMigrations, migrate } from "../../lib/stores/migrate.js";
import { openRelationalStore } from "../../lib/stores/postgres.js";
import type { ProjectConfig } from "./config.js";
import { createApiKeysDomain } from "./domain/api-keys.js";
import { createProjectsDomain } from "./domain/projects.js";
import { createRoutesDomain } from "./domain/routes.js";
import { createUsageRecorder } from "./domain/usage-recorder.js";
import { createPostgresProjectStore } from "./storage/postgres.js";
import { createProjectServiceImpl } from "./transport/project-service.js";

export interface ProjectServiceOverrides {
  readonly now?: () => Date;
  readonly usageFlushMs?: number;
}

export interface RunningProjectService {
  readonly port: number;
  /** Stops accepting, ends watch streams, drains calls, writes pending key usage and closes the store. */
  stop(): Promise<void>;
}

const migrationsDir = join(import.meta.dirname, "storage", "migrations");

/** Wires the project service from its config and serves it. */
export async function startProjectService(config: ProjectConfig, logger: Logger, overrides: ProjectServiceOverrides = {}): Promise<RunningProjectService> {
  const now = overrides.now ?? (() => new Date());
  const db = await openRelationalStore({
    url: config.DATABASE_URL, dataDir: config.DATABASE_URL ? undefined : join(config.DATA_DIR, "project", "pg"),
    schema: config.DATABASE_SCHEMA, logger,
  });
  try {
    const applied = await migrate(db.pool, "project", await loadMigrations(migrationsDir));
    if (applied.length > 0) logger.info({ applied }, "applied migrations");
    const store = createPostgresProjectStore(db.pool);
    const usage = createUsageRecorder({ store, logger, flushMs: overrides.usageFlushMs ?? config.KEY_USAGE_FLUSH_MS });
    usage.start();
    const deps = { store, now, newId: randomUUID, events: createNotifier() };
    const impl = createProjectServiceImpl({
      projects: createProjectsDomain(deps), keys: createApiKeysDomain({ ...deps, usage }), routes: createRoutesDomain(deps),
    });
    const server = createGrpcServer({
      services: [serviceRegistration(ProjectService, impl)],
      interceptors: [createServerErrorInterceptor(logger)],
    });
    const prune = setInterval(() => {
      store.pruneEvents(new Date(now().getTime() - config.EVENT_RETENTION_HOURS * 3_600_000))
        .catch((err: unknown) => logger.warn({ err }, "could not prune old events"));
    }, 3_600_000);
    prune.unref();
    const port = await server.listen(config.HOST, config.PROJECT_PORT);
    logger.info({ host: config.HOST, port, store: db.kind }, "project service listening");
    return {
      port,
      async stop() {
        clearInterval(prune);
        await server.shutdown(config.SHUTDOWN_DRAIN_MS);
        await usage.stop();
        await db.close();
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

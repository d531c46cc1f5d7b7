import { createClient } from "@connectrpc/connect";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createNotifier } from "../../lib/event-feed.js";
import { createServerErrorInterceptor } from "../../lib/grpc/interceptors.js";
import { createGrpcServer, serviceRegistration } from "../../lib/grpc/server.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import type { Logger } from "../../lib/logger.js";
import { createProjectDirectory, type ProjectDirectory } from "../../lib/project-directory.js";
import type { DocumentDb } from "../../lib/stores/documents.js";
import { openDocumentDb } from "../../lib/stores/open-documents.js";
import type { LoggingConfig } from "./config.js";
import { createLoggingDomain } from "./domain/logging-domain.js";
import { createTailHub } from "./domain/tail-hub.js";
import { createDocumentLogStore } from "./storage/documents.js";
import { createLoggingServiceImpl } from "./transport/logging-service.js";

export interface LoggingServiceOverrides {
  readonly now?: () => Date;
  /** Replaces the project service client (tests). */
  readonly directory?: ProjectDirectory;
  /** Uses this document store instead of opening one from the config. */
  readonly db?: DocumentDb;
}

export interface RunningLoggingService {
  readonly port: number;
  stop(): Promise<void>;
}

const HOUR = 3_600_000;

/** Wires the logging service from its config and serves it. */
export async function startLoggingService(config: LoggingConfig, logger: Logger, overrides: LoggingServiceOverrides = {}): Promise<RunningLoggingService> {
  const now = overrides.now ?? (() => new Date());
  const db = overrides.db ?? await openDocumentDb({ url: config.MONGO_URL, dbName: config.MONGO_DB, logger });
  const projects = overrides.directory ? undefined : createGrpcTransport({ address: config.PROJECT_ADDRESS });
  try {
    const store = createDocumentLogStore(db);
    await store.prepare();
    const notifier = createNotifier();
    const domain = createLoggingDomain({
      store, notifier, now, errorMinStatus: config.ERROR_MIN_STATUS,
      directory: overrides.directory ?? createProjectDirectory(createClient(ProjectService, projects!)),
      tail: createTailHub({ store, logger, now, notifier, pollMs: config.TAIL_POLL_MS }),
    });
    // Retention by a sweeper: FerretDB has no TTL indexes, and one mechanism
    // everywhere keeps behaviour identical across stores.
    const sweep = () => store.deleteOlderThan(new Date(now().getTime() - config.LOG_RETENTION_DAYS * 24 * HOUR))
      .then((n) => { if (n > 0) logger.info({ deleted: n }, "deleted expired request logs"); })
      .catch((err: unknown) => logger.warn({ err }, "log retention sweep failed"));
    void sweep();
    const sweeper = setInterval(() => void sweep(), HOUR);
    sweeper.unref();
    const server = createGrpcServer({
      services: [serviceRegistration(LoggingService, createLoggingServiceImpl(domain))],
      interceptors: [createServerErrorInterceptor(logger)],
    });
    const port = await server.listen(config.HOST, config.LOGGING_PORT);
    logger.info({ host: config.HOST, port, store: db.kind }, "logging service listening");
    return {
      port,
      async stop() {
        clearInterval(sweeper);
        await server.shutdown(config.SHUTDOWN_DRAIN_MS);
        projects?.close();
        if (!overrides.db) await db.close();
      },
    };
  } catch (err) {
    projects?.close();
    if (!overrides.db) await db.close();
    throw err;
  }
}

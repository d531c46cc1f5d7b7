import { randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { createNotifier } from "../../lib/event-feed.js";
import { createServerErrorInterceptor } from "../../lib/grpc/interceptors.js";
import { createGrpcServer, serviceRegistration } from "../../lib/grpc/server.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import type { Logger } from "../../lib/logger.js";
import { createLoop } from "../../lib/loop.js";
import { createProjectDirectory, type ProjectDirectory } from "../../lib/project-directory.js";
import type { DocumentDb } from "../../lib/stores/documents.js";
import { openDocumentDb } from "../../lib/stores/open-documents.js";
import type { AnalyticsConfig } from "./config.js";
import { createAlertsDomain } from "./domain/alerts.js";
import { createAlertEvaluator } from "./domain/alerts-evaluator.js";
import { createAnalyticsDomain } from "./domain/analytics-domain.js";
import { createHealthProber } from "./domain/health-prober.js";
import { createLoggingLogSource, type LogSource } from "./domain/log-source.js";
import { createRollupWorker } from "./domain/rollup-worker.js";
import { createAlertStore } from "./storage/alerts.js";
import { createHealthStore } from "./storage/health.js";
import { createRollupStore } from "./storage/rollups.js";
import { createAnalyticsState } from "./storage/state.js";
import { createAnalyticsServiceImpl } from "./transport/analytics-service.js";

export interface AnalyticsServiceOverrides {
  readonly now?: () => Date;
  readonly directory?: ProjectDirectory;
  readonly db?: DocumentDb;
  /** Replaces the logging service client the rollups read from (tests). */
  readonly logSource?: LogSource;
}

export interface RunningAnalyticsService {
  readonly port: number;
  stop(): Promise<void>;
}

const DAY = 86_400_000;
const LEASE_MS = 15_000;

/** Wires the analytics service: queries, alerts, and the background rollup, evaluation, health and retention loops. */
export async function startAnalyticsService(config: AnalyticsConfig, logger: Logger, overrides: AnalyticsServiceOverrides = {}): Promise<RunningAnalyticsService> {
  const now = overrides.now ?? (() => new Date());
  const db = overrides.db ?? await openDocumentDb({ url: config.MONGO_URL, dbName: config.MONGO_DB, logger });
  const projects = overrides.directory ? undefined : createGrpcTransport({ address: config.PROJECT_ADDRESS });
  const logging = overrides.logSource ? undefined : createGrpcTransport({ address: config.LOGGING_ADDRESS });
  const closeClients = () => { projects?.close(); logging?.close(); };
  try {
    const rollups = createRollupStore(db);
    const alertStore = createAlertStore(db);
    const health = createHealthStore(db);
    const state = createAnalyticsState(db);
    await Promise.all([rollups.prepare(), alertStore.prepare(), health.prepare()]);
    const directory = overrides.directory ?? createProjectDirectory(createClient(ProjectService, projects!));
    const notifier = createNotifier();
    const alerts = createAlertsDomain({ alerts: alertStore, directory, now, newId: randomUUID, notifier });
    const evaluator = createAlertEvaluator({ alerts: alertStore, rollups, health, now, logger, notifier, intervalMs: config.ALERT_INTERVAL_MS });
    const source = overrides.logSource ?? createLoggingLogSource(createClient(LoggingService, logging!));
    const worker = createRollupWorker({ state, rollups, source });
    const owner = randomUUID();

    // One replica at a time rolls up (the lease), so every record is counted once.
    const holdLease = async () => {
      const at = now();
      return state.acquire("rollup", owner, at, new Date(at.getTime() + LEASE_MS));
    };
    // The lease is renewed before every batch, so a long catch-up never
    // outlives it and lets a second replica start from the same cursor.
    const rollupRound = async () => {
      while ((await holdLease()) && (await worker.runOnce()) === worker.batch) { /* a full batch: more is waiting */ }
    };
    const retention = async () => {
      await rollups.deleteOlderThan(new Date(now().getTime() - config.ROLLUP_RETENTION_DAYS * DAY));
      await health.deleteOlderThan(new Date(now().getTime() - 2 * DAY));
    };
    const loops = [
      createLoop("rollup", rollupRound, config.ROLLUP_INTERVAL_MS, logger),
      createLoop("alerts", () => evaluator.runOnce(), config.ALERT_INTERVAL_MS, logger),
      createLoop("retention", retention, 3_600_000, logger),
    ];
    const prober = createHealthProber({ samples: health, targets: config.HEALTH_TARGETS, now, logger, intervalMs: config.HEALTH_INTERVAL_MS });

    const server = createGrpcServer({
      services: [serviceRegistration(AnalyticsService, createAnalyticsServiceImpl(createAnalyticsDomain({ rollups, directory, now }), alerts))],
      interceptors: [createServerErrorInterceptor(logger)],
    });
    const port = await server.listen(config.HOST, config.ANALYTICS_PORT);
    loops.forEach((l) => l.start());
    prober.start();
    logger.info({ host: config.HOST, port, store: db.kind }, "analytics service listening");
    return {
      port,
      async stop() {
        await server.shutdown(config.SHUTDOWN_DRAIN_MS);
        await prober.stop();
        await Promise.all(loops.map((l) => l.stop()));
        await state.release("rollup", owner).catch(() => undefined);
        closeClients();
        if (!overrides.db) await db.close();
      },
    };
  } catch (err) {
    closeClients();
    if (!overrides.db) await db.close();
    throw err;
  }
}

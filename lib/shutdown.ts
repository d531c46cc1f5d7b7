import type { Logger } from "pino";

/** Something to stop on shutdown; closers run in reverse registration order. */
export type Closer = () => Promise<void> | void;

/**
 * Runs `closers` once on SIGTERM or SIGINT, last registered first (stop
 * accepting, drain, flush, close stores), then exits 0; exits 1 if a closer
 * throws or the whole sequence exceeds `timeoutMs`.
 */
export function onShutdown(logger: Logger, closers: Closer[], timeoutMs = 30_000): void {
  let started = false;
  const run = async (signal: string) => {
    if (started) return;
    started = true;
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, "shutdown timed out");
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    let code = 0;
    for (const close of [...closers].reverse()) {
      try {
        await close();
      } catch (err) {
        code = 1;
        logger.error({ err }, "error during shutdown");
      }
    }
    logger.info("stopped");
    logger.flush?.();
    process.exit(code);
  };
  process.once("SIGTERM", () => void run("SIGTERM"));
  process.once("SIGINT", () => void run("SIGINT"));
}

import type { Logger } from "pino";

/**
 * Runs `round` every `intervalMs` (measured from the end of one round to the
 * start of the next, so rounds never overlap) until `stop`, which waits for
 * the round in progress. A failing round is logged and the loop goes on.
 */
export function createLoop(name: string, round: () => Promise<unknown>, intervalMs: number, logger: Logger) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = true;
  const tick = () => {
    running = round().catch((err: unknown) => logger.warn({ err, loop: name }, `${name} round failed`));
    void running.finally(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  return {
    start(): void {
      stopped = false;
      timer = setTimeout(tick, 0);
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

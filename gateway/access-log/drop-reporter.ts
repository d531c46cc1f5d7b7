import type { Logger } from "../../lib/logger.js";
import type { Timers } from "./wakeup.js";

/**
 * Counts records dropped because the buffer was full and says so in at most
 * one warning per `intervalMs`: the first drop is reported at once, the drops
 * of the following interval together at its end, and what is left by
 * `close`. So a full buffer under load writes a handful of lines, not one per
 * request, and every drop is reported once.
 */
export function createDropReporter(logger: Logger, intervalMs: number, timers: Timers) {
  let total = 0;
  let unreported = 0;
  let timer: unknown;
  const report = (buffered: number): boolean => {
    if (unreported === 0) return false;
    logger.warn({ dropped: unreported, droppedTotal: total, buffered }, "access-log buffer full: records dropped");
    unreported = 0;
    return true;
  };
  const arm = (buffered: () => number) => {
    timer = timers.setTimeout(() => {
      timer = undefined;
      if (report(buffered())) arm(buffered);
    }, intervalMs);
    (timer as { unref?: () => void } | undefined)?.unref?.(); // a pending warning must not keep the process alive
  };
  return {
    get total() {
      return total;
    },
    /** Counts one drop; `buffered` tells the warning how full the buffer is. */
    drop(buffered: () => number): void {
      total++;
      unreported++;
      if (timer !== undefined) return;
      report(buffered());
      arm(buffered);
    },
    /** Reports what is still unreported and stops the timer. */
    close(buffered: number): void {
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      report(buffered);
    },
  };
}

/** The timer functions the access-log shipper waits with; tests may pass their own. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Waits on conditions over state that changes elsewhere, without polling:
 * `until(check, ms)` resolves once `check()` holds at a `poke()`, or after
 * `ms` (never, when unset). Whoever changes the state pokes.
 */
export function createWakeup(timers: Timers) {
  const waiters = new Set<{ readonly check: () => boolean; readonly done: () => void }>();
  return {
    until(check: () => boolean, ms?: number): Promise<void> {
      if (check()) return Promise.resolve();
      return new Promise((resolve) => {
        let handle: unknown;
        const waiter = {
          check,
          done: () => {
            waiters.delete(waiter);
            if (handle !== undefined) timers.clearTimeout(handle);
            resolve();
          },
        };
        waiters.add(waiter);
        if (ms !== undefined) handle = timers.setTimeout(waiter.done, ms);
      });
    },
    poke(): void {
      for (const w of [...waiters]) if (w.check()) w.done();
    },
  };
}

import type { Logger } from "pino";
import type { AuthStore } from "../storage/port.js";

/** A message to deliver: `template` is "verify_email" or "reset_password", `payload` its fields (name, link). */
export interface Mail {
  readonly to: string;
  readonly template: string;
  readonly payload: Readonly<Record<string, string>>;
}

/** Delivers mail. Throws to have the outbox retry later. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Development mailer: writes each message, link included, to the log instead of sending it. */
export function createLogMailer(logger: Logger): Mailer {
  return {
    async send(mail) {
      logger.info({ mail: { to: mail.to, template: mail.template, ...mail.payload } }, `mail to ${mail.to}: ${mail.template}`);
    },
  };
}

export interface OutboxDispatcherOptions {
  readonly store: AuthStore;
  readonly mailer: Mailer;
  readonly now: () => Date;
  readonly logger: Logger;
  /** Mails claimed per round; default 20. */
  readonly batchSize?: number;
}

/**
 * Sends what the mail outbox holds. Each round claims due mail with
 * `FOR UPDATE SKIP LOCKED` (so replicas share the work without sending twice),
 * delivers it, and marks it sent, or failed with exponential backoff (capped
 * at one hour).
 */
export function createOutboxDispatcher(opts: OutboxDispatcherOptions) {
  const batch = opts.batchSize ?? 20;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function runOnce(): Promise<number> {
    return opts.store.transaction(async (tx) => {
      const due = await tx.claimDueMail(batch, opts.now());
      for (const mail of due) {
        try {
          await opts.mailer.send({ to: mail.recipient, template: mail.template, payload: mail.payload });
          await tx.markMailSent(mail.id, opts.now());
        } catch (err) {
          const delayMs = Math.min(3_600_000, 1_000 * 2 ** mail.attempts);
          opts.logger.warn({ err, mailId: mail.id, attempts: mail.attempts + 1 }, "mail delivery failed; will retry");
          await tx.markMailFailed(mail.id, String(err), new Date(opts.now().getTime() + delayMs));
        }
      }
      return due.length;
    });
  }

  return {
    runOnce,
    /** Polls every `intervalMs` until `stop`. */
    start(intervalMs = 1_000): void {
      const tick = () => {
        running = runOnce().catch((err: unknown) => {
          opts.logger.warn({ err }, "mail outbox round failed");
          return 0;
        });
        void running.finally(() => { if (timer) timer = setTimeout(tick, intervalMs); });
      };
      timer = setTimeout(tick, intervalMs);
    },
    /** Stops polling and waits for the round in progress. */
    async stop(): Promise<void> {
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}

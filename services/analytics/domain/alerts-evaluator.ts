import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Notifier } from "../../../lib/event-feed.js";
import type { AlertEventRecord, AlertOperator, AlertRuleRecord, AlertStore } from "../storage/alerts.js";
import type { HealthStore } from "../storage/health.js";
import type { RollupQuery, RollupStore } from "../storage/rollups.js";
import { addRollup, emptyTotals, errorRate } from "./analytics-domain.js";
import { percentiles } from "./histogram.js";

export interface AlertEvaluatorOptions {
  readonly alerts: AlertStore;
  readonly rollups: RollupStore;
  /** Health samples, for `uptime`. */
  readonly health: Pick<HealthStore, "uptime">;
  readonly now: () => Date;
  readonly logger: Logger;
  /** Woken after events are stored, so this process's watchers see them at once. */
  readonly notifier: Notifier;
  /** Event ids; default random UUIDs. */
  readonly newId?: () => string;
  /**
   * The period `runOnce` is called at (ALERT_INTERVAL_MS), default 30 s. A
   * rule fires at most once per half of it whatever its cool-down, so
   * replicas evaluating the same round never both fire a rule without one.
   */
  readonly intervalMs?: number;
}

/** Methods whose traffic a rule with a route measures (endpoint rollups are keyed "METHOD /route"). */
const ROUTE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const QUANTILES: Record<string, number> = { latency_p50: 0.5, latency_p95: 0.95, latency_p99: 0.99 };
const SYMBOLS: Record<AlertOperator, string> = { gt: ">", gte: ">=", lt: "<", lte: "<=", eq: "==" };

/** Whether `value <operator> threshold` holds. */
export function conditionHolds(value: number, operator: AlertOperator, threshold: number): boolean {
  switch (operator) {
    case "gt": return value > threshold;
    case "gte": return value >= threshold;
    case "lt": return value < threshold;
    case "lte": return value <= threshold;
    case "eq": return value === threshold;
  }
}

/** The rollups a rule's traffic metric reads: its route's endpoints, else its service, else the project total. */
function rollupQuery(rule: AlertRuleRecord, from: Date, to: Date): RollupQuery {
  const tenants = [rule.projectId];
  if (rule.route) return { dim: "endpoint", tenants, from, to, keys: ROUTE_METHODS.map((m) => `${m} ${rule.route}`) };
  if (rule.service) return { dim: "service", tenants, from, to, keys: [rule.service] };
  return { dim: "total", tenants, from, to };
}

/**
 * The rule's metric over [from, to), undefined without data: no requests
 * for error rate and latency, no health samples for uptime. A request count
 * is always known (0 without requests).
 */
export async function measureMetric(
  deps: Pick<AlertEvaluatorOptions, "rollups" | "health">, rule: AlertRuleRecord, from: Date, to: Date,
): Promise<number | undefined> {
  if (rule.metric === "uptime") return deps.health.uptime(rule.service || undefined, from, to);
  const t = (await deps.rollups.read(rollupQuery(rule, from, to))).reduce(addRollup, emptyTotals());
  if (rule.metric === "request_count") return t.count;
  if (t.count === 0) return undefined;
  if (rule.metric === "error_rate") return errorRate(t.errors, t.count);
  return percentiles(t.histogram, [QUANTILES[rule.metric]!])[0];
}

const round = (n: number) => String(Number(n.toFixed(2)));

/** The event's summary, e.g. "error_rate 7.5 > 5 over 300s". */
export function alertMessage(rule: AlertRuleRecord, value: number): string {
  return `${rule.metric} ${round(value)} ${SYMBOLS[rule.operator]} ${round(rule.threshold)} over ${rule.windowSeconds}s`;
}

/**
 * Checks every enabled rule against the rollups and health samples of its
 * window [now − window, now) and stores an event for each rule whose
 * condition holds, unless it fired within its cool-down. Firing is claimed
 * in the store first (an insert against a unique key, atomic on MongoDB and
 * FerretDB alike), so with several replicas evaluating at the same time each
 * breach still fires exactly one event. Should storing the event then fail,
 * that firing is lost (logged) and the rule stays quiet for its cool-down.
 */
export function createAlertEvaluator(opts: AlertEvaluatorOptions) {
  const newId = opts.newId ?? randomUUID;
  const minGapMs = (opts.intervalMs ?? 30_000) / 2;

  async function evaluate(rule: AlertRuleRecord, at: Date): Promise<AlertEventRecord | undefined> {
    const from = new Date(at.getTime() - rule.windowSeconds * 1000);
    const value = await measureMetric(opts, rule, from, at);
    if (value === undefined || !conditionHolds(value, rule.operator, rule.threshold)) return undefined;
    if (!(await opts.alerts.claimFiring(rule.id, at, Math.max(rule.coolDownSeconds * 1000, minGapMs)))) return undefined;
    return opts.alerts.insertEvent({
      id: newId(), ruleId: rule.id, ruleName: rule.name, projectId: rule.projectId, severity: rule.severity,
      metric: rule.metric, value, threshold: rule.threshold, operator: rule.operator, message: alertMessage(rule, value),
      triggeredAt: at, acknowledged: false, acknowledgedBy: "", acknowledgeNote: "",
    });
  }

  return {
    /**
     * One round over every enabled rule; answers the events it fired. A rule
     * that cannot be evaluated (store unavailable) is logged and skipped.
     */
    async runOnce(): Promise<AlertEventRecord[]> {
      const at = opts.now();
      const fired: AlertEventRecord[] = [];
      for (const rule of await opts.alerts.enabledRules()) {
        try {
          const event = await evaluate(rule, at);
          if (event) fired.push(event);
        } catch (err) {
          opts.logger.warn({ err, ruleId: rule.id }, "alert rule evaluation failed");
        }
      }
      if (fired.length > 0) opts.notifier.notify();
      return fired;
    },
  };
}

export type AlertEvaluator = ReturnType<typeof createAlertEvaluator>;

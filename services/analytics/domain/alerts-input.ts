import type { createViolations } from "../../../lib/errors.js";
import { parsePathTemplate, PathTemplateError } from "../../../lib/path-template.js";
import type { AlertMetric, AlertOperator, AlertRuleFields, AlertSeverity } from "../storage/alerts.js";

type Violations = ReturnType<typeof createViolations>;

/** The documented values of the rule fields (analytics.proto AlertRule). */
export const ALERT_METRICS: readonly AlertMetric[] = ["request_count", "error_rate", "latency_p50", "latency_p95", "latency_p99", "uptime"];
export const ALERT_OPERATORS: readonly AlertOperator[] = ["gt", "gte", "lt", "lte", "eq"];
export const ALERT_SEVERITIES: readonly AlertSeverity[] = ["info", "warning", "critical"];
/** Services whose traffic and health a rule may watch (short names, as rollups and health samples key them). */
export const ALERT_SERVICES: readonly string[] = ["auth", "project", "logging", "analytics"];

/** A rule's editable fields as requests carry them (proto3: unset strings are "", unset numbers 0). */
export interface AlertRuleInput {
  name: string;
  service: string;
  route: string;
  metric: string;
  windowSeconds: number;
  threshold: number;
  operator: string;
  coolDownSeconds: number;
  severity: string;
  /** Unset means true. */
  enabled?: boolean | undefined;
}

const MAX_NAME = 100;

function oneOf<T extends string>(v: Violations, field: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) v.add(field, `must be one of ${allowed.join(", ")}`);
  return value as T;
}

function intIn(v: Violations, field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) v.add(field, `must be a whole number from ${min} to ${max}`);
  return value;
}

function routeOf(v: Violations, value: string): string {
  const route = value.trim();
  if (!route) return "";
  try {
    parsePathTemplate(route);
  } catch (err) {
    if (!(err instanceof PathTemplateError)) throw err;
    v.add("route", `must be a path template such as /api/v1/projects/{id}: ${err.reason} at ${err.position}`);
  }
  return route;
}

/**
 * Checks a rule's fields as analytics.proto documents them, adding one
 * violation per bad field under its proto name, and answers them normalized
 * (name and route trimmed, `enabled` defaulted to true).
 */
export function ruleFieldsOf(v: Violations, input: AlertRuleInput): AlertRuleFields {
  const name = input.name.trim();
  if (name.length < 1 || name.length > MAX_NAME) v.add("name", `must be 1 to ${MAX_NAME} characters`);
  const service = input.service.trim();
  if (service) oneOf(v, "service", service, ALERT_SERVICES);
  if (!Number.isFinite(input.threshold)) v.add("threshold", "must be a finite number");
  return {
    name,
    service,
    route: routeOf(v, input.route),
    metric: oneOf(v, "metric", input.metric, ALERT_METRICS),
    windowSeconds: intIn(v, "window_seconds", input.windowSeconds, 60, 86_400),
    threshold: input.threshold,
    operator: oneOf(v, "operator", input.operator, ALERT_OPERATORS),
    coolDownSeconds: intIn(v, "cool_down_seconds", input.coolDownSeconds, 0, 86_400),
    severity: oneOf(v, "severity", input.severity, ALERT_SEVERITIES),
    enabled: input.enabled ?? true,
  };
}

/** An optional severity filter: "" (any) or one of the severities. */
export function severityFilterOf(v: Violations, value: string): AlertSeverity | undefined {
  return value ? oneOf(v, "severity", value, ALERT_SEVERITIES) : undefined;
}

/** `offset`: 0 or more. */
export function offsetOf(v: Violations, offset: number): number {
  if (!Number.isInteger(offset) || offset < 0) v.add("offset", "must be 0 or more");
  return Math.max(0, Math.trunc(offset) || 0);
}

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AlertEventSchema, AlertRuleSchema, type AlertEvent, type AlertRule } from "../../../gen/mesh/analytics/v1/analytics_pb.js";
import type { AlertEventRecord, AlertRuleRecord } from "../storage/alerts.js";

const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);

export function ruleMessage(r: AlertRuleRecord): AlertRule {
  return create(AlertRuleSchema, {
    id: r.id, projectId: r.projectId, name: r.name, service: r.service, route: r.route, metric: r.metric,
    windowSeconds: r.windowSeconds, threshold: r.threshold, operator: r.operator, coolDownSeconds: r.coolDownSeconds,
    severity: r.severity, enabled: r.enabled, createdAt: ts(r.createdAt), updatedAt: ts(r.updatedAt),
  });
}

export function eventMessage(e: AlertEventRecord): AlertEvent {
  return create(AlertEventSchema, {
    id: e.id, ruleId: e.ruleId, ruleName: e.ruleName, projectId: e.projectId, severity: e.severity, metric: e.metric,
    value: e.value, threshold: e.threshold, operator: e.operator, message: e.message, triggeredAt: ts(e.triggeredAt),
    acknowledged: e.acknowledged, acknowledgedAt: ts(e.acknowledgedAt), acknowledgedBy: e.acknowledgedBy,
    acknowledgeNote: e.acknowledgeNote,
  });
}

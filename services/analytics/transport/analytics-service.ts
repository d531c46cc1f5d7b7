import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AnalyticsService } from "../../../gen/mesh/analytics/v1/analytics_pb.js";
import { callerFrom } from "../../../lib/identity.js";
import type { AlertsDomain } from "../domain/alerts.js";
import type { AnalyticsDomain } from "../domain/analytics-domain.js";
import { eventMessage, ruleMessage } from "./messages.js";

const date = (t: Timestamp | undefined) => (t ? timestampDate(t) : undefined);
const window = (r: { from?: Timestamp | undefined; to?: Timestamp | undefined; projectId: string }) =>
  ({ from: date(r.from), to: date(r.to), projectId: r.projectId });

/** gRPC surface of the analytics service: figures from rollups, alert rules and events. */
export function createAnalyticsServiceImpl(analytics: AnalyticsDomain, alerts: AlertsDomain): ServiceImpl<typeof AnalyticsService> {
  return {
    getSummary: async (req, ctx) => analytics.summary(callerFrom(ctx.requestHeader), window(req)),
    async getRequestsOverTime(req, ctx) {
      const buckets = await analytics.requestsOverTime(callerFrom(ctx.requestHeader), { ...window(req), interval: req.interval });
      return { buckets: buckets.map((b) => ({ start: timestampFromDate(b.start), count: b.count })) };
    },
    async getErrorRate(req, ctx) {
      const r = await analytics.errorRateOverTime(callerFrom(ctx.requestHeader), { ...window(req), interval: req.interval });
      return { errorRate: r.errorRate, buckets: r.buckets.map((b) => ({ ...b, start: timestampFromDate(b.start) })) };
    },
    getLatency: async (req, ctx) => analytics.latency(callerFrom(ctx.requestHeader), window(req)),
    async getTopEndpoints(req, ctx) {
      return { items: await analytics.topEndpoints(callerFrom(ctx.requestHeader), { ...window(req), limit: req.limit }) };
    },
    async getTopUsers(req, ctx) {
      return { items: await analytics.topUsers(callerFrom(ctx.requestHeader), { ...window(req), limit: req.limit }) };
    },
    async getApiKeyUsage(req, ctx) {
      const items = await analytics.apiKeyUsage(callerFrom(ctx.requestHeader), { ...window(req), limit: req.limit });
      return { items: items.map((i) => ({ ...i, lastUsedAt: timestampFromDate(i.lastUsedAt) })) };
    },

    async createAlertRule(req, ctx) {
      return { rule: ruleMessage(await alerts.createRule(callerFrom(ctx.requestHeader), req)) };
    },
    async listAlertRules(req, ctx) {
      const page = await alerts.listRules(callerFrom(ctx.requestHeader), req);
      return { rules: page.items.map(ruleMessage), total: page.total, limit: page.limit, offset: page.offset };
    },
    async getAlertRule(req, ctx) {
      return { rule: ruleMessage(await alerts.getRule(callerFrom(ctx.requestHeader), req.id)) };
    },
    async updateAlertRule(req, ctx) {
      return { rule: ruleMessage(await alerts.updateRule(callerFrom(ctx.requestHeader), req.id, req)) };
    },
    async deleteAlertRule(req, ctx) {
      await alerts.deleteRule(callerFrom(ctx.requestHeader), req.id);
      return {};
    },
    async listAlertEvents(req, ctx) {
      const page = await alerts.listEvents(callerFrom(ctx.requestHeader), req);
      return { events: page.items.map(eventMessage), total: page.total, limit: page.limit, offset: page.offset };
    },
    async acknowledgeAlertEvent(req, ctx) {
      return { event: eventMessage(await alerts.acknowledgeEvent(callerFrom(ctx.requestHeader), req.id, req.note)) };
    },
    async *watchAlertEvents(req, ctx) {
      for await (const e of alerts.watchEvents(callerFrom(ctx.requestHeader), req, ctx.signal)) yield { event: eventMessage(e) };
    },
  };
}

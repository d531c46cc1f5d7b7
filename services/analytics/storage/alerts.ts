import { Code, ConnectError } from "@connectrpc/connect";
import type { Doc, DocumentDb, Filter } from "../../../lib/stores/documents.js";
import type { TenantSet } from "./rollups.js";

/** Collections of the alert store. */
export const RULES_COLLECTION = "alert_rules";
export const EVENTS_COLLECTION = "alert_events";
export const FIRINGS_COLLECTION = "alert_firings";
export const ACKS_COLLECTION = "alert_acks";

/** What a rule measures (analytics.proto AlertRule.metric). */
export type AlertMetric = "request_count" | "error_rate" | "latency_p50" | "latency_p95" | "latency_p99" | "uptime";
/** How the metric is compared with the threshold. */
export type AlertOperator = "gt" | "gte" | "lt" | "lte" | "eq";
/** How urgent a rule's events are. */
export type AlertSeverity = "info" | "warning" | "critical";

/** What a rule's owner sets (create and replace). */
export interface AlertRuleFields {
  name: string;
  /** Short service name, or "" for all of the project's traffic. */
  service: string;
  /** Route template, or "" for all routes. */
  route: string;
  metric: AlertMetric;
  windowSeconds: number;
  threshold: number;
  operator: AlertOperator;
  coolDownSeconds: number;
  severity: AlertSeverity;
  enabled: boolean;
}

/** A stored rule: its fields, the project it watches, and when it was created and last replaced. */
export interface AlertRuleRecord extends AlertRuleFields {
  readonly id: string;
  readonly projectId: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** One firing of a rule, with the rule's fields as they were then and its acknowledgement. */
export interface AlertEventRecord {
  readonly id: string;
  /** Position in the event log: strictly increasing in the order events are stored (watchers follow it). */
  readonly seq: number;
  readonly ruleId: string;
  readonly ruleName: string;
  readonly projectId: string;
  readonly severity: AlertSeverity;
  readonly metric: AlertMetric;
  readonly value: number;
  readonly threshold: number;
  readonly operator: AlertOperator;
  readonly message: string;
  readonly triggeredAt: Date;
  readonly acknowledged: boolean;
  readonly acknowledgedAt?: Date | undefined;
  readonly acknowledgedBy: string;
  readonly acknowledgeNote: string;
}

/** One page of a list and the number of matches across all pages. */
export interface Page<T> {
  readonly items: T[];
  readonly total: number;
}

/** Event list filters: tenants always, severity and acknowledged when set. */
export interface EventQuery {
  readonly tenants: TenantSet;
  readonly severity?: AlertSeverity | undefined;
  readonly acknowledged?: boolean | undefined;
  readonly limit: number;
  readonly offset: number;
}

type RuleDoc = Doc & Omit<AlertRuleRecord, "id">;
type EventDoc = Doc & Omit<AlertEventRecord, "id">;
/** The `n`-th firing of a rule; `_id` is `${ruleId}|${n}`. */
interface FiringDoc extends Doc { ruleId: string; n: number; at: Date }
/** The first acknowledgement of an event; `_id` is the event's. */
interface AckDoc extends Doc { at: Date; by: string; note: string }

const inTenants = (tenants: TenantSet): Filter => (tenants === "all" ? {} : { projectId: { $in: [...tenants] } });
/** Attempts at a free sequence number before giving up (each lost race means another event was stored). */
const SEQ_ATTEMPTS = 50;

function toRule(d: RuleDoc): AlertRuleRecord {
  const { _id, ...rest } = d;
  return { id: _id, ...rest };
}

function toEvent(d: EventDoc): AlertEventRecord {
  const { _id, acknowledgedAt, ...rest } = d;
  return { id: _id, ...rest, ...(acknowledgedAt ? { acknowledgedAt } : {}) };
}

/**
 * Alert rules and the events they trigger, in a DocumentDb. Whatever must
 * hold across replicas rests on inserts against a unique key, the one
 * operation FerretDB (the CI server) makes atomic across connections (see
 * lib/stores/mongo.ts): a rule's n-th firing is the document `ruleId|n`, an
 * event's sequence number is unique, an event's first acknowledgement is the
 * document keyed by the event's id. Methods throw what the DocumentDb port
 * throws (UNAVAILABLE, INTERNAL).
 */
export function createAlertStore(db: DocumentDb) {
  const rules = db.collection<RuleDoc>(RULES_COLLECTION);
  const events = db.collection<EventDoc>(EVENTS_COLLECTION);
  const firings = db.collection<FiringDoc>(FIRINGS_COLLECTION);
  const acks = db.collection<AckDoc>(ACKS_COLLECTION);

  async function getEvent(id: string): Promise<AlertEventRecord | undefined> {
    const doc = await events.findOne({ _id: id });
    return doc && toEvent(doc);
  }

  async function latestSeq(): Promise<number> {
    const [last] = await events.find({}, { sort: { seq: -1 }, limit: 1 });
    return last?.seq ?? 0;
  }

  return {
    async prepare(): Promise<void> {
      await rules.ensureIndex({ projectId: 1, createdAt: 1 }, { name: "by_project_created" });
      await rules.ensureIndex({ enabled: 1 }, { name: "by_enabled" });
      await events.ensureIndex({ seq: 1 }, { name: "by_seq", unique: true });
      await events.ensureIndex({ projectId: 1, seq: -1 }, { name: "by_project_seq" });
      await firings.ensureIndex({ ruleId: 1, n: -1 }, { name: "by_rule_n" });
    },

    /** Stores a new rule. ALREADY_EXISTS on an id clash. */
    async insertRule(rule: AlertRuleRecord): Promise<void> {
      const { id, ...rest } = rule;
      const { duplicates } = await rules.insertMany([{ _id: id, ...rest }]);
      if (duplicates.length > 0) throw new ConnectError("alert rule already exists", Code.AlreadyExists);
    },

    async getRule(id: string): Promise<AlertRuleRecord | undefined> {
      const doc = await rules.findOne({ _id: id });
      return doc && toRule(doc);
    },

    /** Rules of the tenants, oldest first, with their total count. */
    async listRules(q: { tenants: TenantSet; limit: number; offset: number }): Promise<Page<AlertRuleRecord>> {
      const where = inTenants(q.tenants);
      const [docs, total] = await Promise.all([
        rules.find(where, { sort: { createdAt: 1, _id: 1 }, skip: q.offset, limit: q.limit }),
        rules.count(where),
      ]);
      return { items: docs.map(toRule), total };
    },

    /** Every enabled rule (what the evaluator checks). */
    async enabledRules(): Promise<AlertRuleRecord[]> {
      return (await rules.find({ enabled: true }, { sort: { createdAt: 1, _id: 1 } })).map(toRule);
    },

    /** Sets every editable field; the project, creation time and firing history stay. Undefined when absent. */
    async replaceRule(id: string, fields: AlertRuleFields, updatedAt: Date): Promise<AlertRuleRecord | undefined> {
      const doc = await rules.findOneAndUpdate({ _id: id }, { $set: { ...fields, updatedAt } });
      return doc && toRule(doc);
    },

    /** Deletes a rule and its firing history; false when absent. Its events stay. */
    async deleteRule(id: string): Promise<boolean> {
      const deleted = await rules.deleteMany({ _id: id });
      await firings.deleteMany({ ruleId: id });
      return deleted > 0;
    },

    /**
     * Claims the right to fire rule `ruleId` at `now`: false while its last
     * firing is less than `coolDownMs` before `now`; otherwise true for
     * exactly one of the callers that saw the same last firing, because each
     * inserts the same next firing document and only one insert can succeed.
     */
    async claimFiring(ruleId: string, now: Date, coolDownMs: number): Promise<boolean> {
      const [last] = await firings.find({ ruleId }, { sort: { n: -1 }, limit: 1 });
      if (last && now.getTime() - last.at.getTime() < coolDownMs) return false;
      const n = (last?.n ?? 0) + 1;
      const { duplicates } = await firings.insertMany([{ _id: `${ruleId}|${n}`, ruleId, n, at: now }]);
      return duplicates.length === 0;
    },

    /**
     * Stores an event under the next sequence number and answers it. The
     * number is taken by inserting against the unique `seq` index (retrying
     * when another replica took it first), so a number is visible only once
     * every smaller one is: watchers following `seq` miss nothing. ALREADY_EXISTS on an id clash.
     */
    async insertEvent(event: Omit<AlertEventRecord, "seq">): Promise<AlertEventRecord> {
      const { id, acknowledgedAt, ...rest } = event;
      for (let attempt = 0; attempt < SEQ_ATTEMPTS; attempt++) {
        const seq = (await latestSeq()) + 1;
        const doc = { _id: id, ...rest, seq, ...(acknowledgedAt ? { acknowledgedAt } : {}) };
        if ((await events.insertMany([doc])).duplicates.length === 0) return { ...event, seq };
        if (await events.findOne({ _id: id })) throw new ConnectError("alert event already exists", Code.AlreadyExists);
      }
      throw new ConnectError("could not allocate an alert event number", Code.Aborted);
    },

    getEvent,

    /** Events matching every filter, newest first, with their total count. */
    async listEvents(q: EventQuery): Promise<Page<AlertEventRecord>> {
      const where: Filter = inTenants(q.tenants);
      if (q.severity) where.severity = q.severity;
      if (q.acknowledged !== undefined) where.acknowledged = q.acknowledged;
      const [docs, total] = await Promise.all([
        events.find(where, { sort: { seq: -1 }, skip: q.offset, limit: q.limit }),
        events.count(where),
      ]);
      return { items: docs.map(toEvent), total };
    },

    /**
     * Acknowledges an event once: the first acknowledgement (the one whose
     * record insert wins) sets when, by whom and the note; later ones change
     * nothing. Answers the event as first acknowledged, undefined when absent.
     */
    async acknowledge(id: string, ack: { at: Date; by: string; note: string }): Promise<AlertEventRecord | undefined> {
      if (!(await events.findOne({ _id: id }))) return undefined;
      await acks.insertMany([{ _id: id, at: ack.at, by: ack.by, note: ack.note }]);
      const first = (await acks.findOne({ _id: id }))!;
      // Idempotent: racing acknowledgers all write the winner's values.
      await events.updateOne({ _id: id }, {
        $set: { acknowledged: true, acknowledgedAt: first.at, acknowledgedBy: first.by, acknowledgeNote: first.note },
      });
      return getEvent(id);
    },

    /** The highest sequence number stored (0 before the first event). */
    latestSeq,

    /** Events with `seq > after`, ascending, at most `limit`. */
    async eventsAfter(after: number, limit: number): Promise<AlertEventRecord[]> {
      return (await events.find({ seq: { $gt: after } }, { sort: { seq: 1 }, limit })).map(toEvent);
    },
  };
}

export type AlertStore = ReturnType<typeof createAlertStore>;

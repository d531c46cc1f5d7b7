import { Code, ConnectError } from "@connectrpc/connect";
import { createViolations } from "../../../lib/errors.js";
import { followFeed, type Notifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import { readScopeOf, scopeHasProject, type ProjectDirectory } from "../../../lib/project-directory.js";
import type { AlertEventRecord, AlertRuleRecord, AlertStore, Page } from "../storage/alerts.js";
import { tenantsFor } from "./analytics-domain.js";
import { offsetOf, ruleFieldsOf, severityFilterOf, type AlertRuleInput } from "./alerts-input.js";
import { limitOf } from "./windows.js";

/** What the alerts domain needs; `notifier` is shared with the evaluator. */
export interface AlertsDeps {
  readonly alerts: AlertStore;
  readonly directory: ProjectDirectory;
  readonly now: () => Date;
  readonly newId: () => string;
  /** Woken when this process stores an event (the evaluator's notifier), so local watchers see it at once. */
  readonly notifier: Notifier;
  /** How often watchers poll for other replicas' events; default 200 ms. */
  readonly pollMs?: number;
}

/** A page as the list RPCs answer it. */
export type PageOf<T> = Page<T> & { readonly limit: number; readonly offset: number };

const MAX_NOTE = 1000;

const ruleNotFound = () => new ConnectError("alert rule not found", Code.NotFound);
const eventNotFound = () => new ConnectError("alert event not found", Code.NotFound);

/**
 * Alert rules (CRUD) and their events (list, acknowledge, watch), scoped like
 * every analytics read: a user sees their projects' rules and events, an API
 * key its project's, an admin all. Another tenant's rule or event is
 * NOT_FOUND exactly like a missing one.
 */
export function createAlertsDomain(deps: AlertsDeps) {
  const { alerts, directory, now } = deps;

  async function visibleRule(caller: Caller, id: string): Promise<AlertRuleRecord> {
    const rule = id ? await alerts.getRule(id) : undefined;
    if (!rule || !scopeHasProject(await readScopeOf(caller, directory), rule.projectId)) throw ruleNotFound();
    return rule;
  }

  return {
    /**
     * Creates a rule. `projectId` is required for a user (one of their
     * projects), defaults to an API key's project (and must equal it), and
     * may be any project for an admin. INVALID_ARGUMENT names every bad
     * field; NOT_FOUND for a project the caller cannot see.
     */
    async createRule(caller: Caller, input: AlertRuleInput & { projectId: string }): Promise<AlertRuleRecord> {
      const v = createViolations();
      const fields = ruleFieldsOf(v, input);
      const projectId = input.projectId.trim() || caller.projectId || "";
      if (!projectId) v.add("project_id", "required: the project the rule watches");
      v.throwIfAny();
      if (!scopeHasProject(await readScopeOf(caller, directory), projectId)) throw new ConnectError("project not found", Code.NotFound);
      const at = now();
      const rule: AlertRuleRecord = { id: deps.newId(), projectId, ...fields, createdAt: at, updatedAt: at };
      await alerts.insertRule(rule);
      return rule;
    },

    /** Rules visible to the caller (narrowed to `projectId` when given), oldest first. */
    async listRules(caller: Caller, q: { limit: number; offset: number; projectId: string }): Promise<PageOf<AlertRuleRecord>> {
      const v = createViolations();
      const limit = limitOf(v, q.limit);
      const offset = offsetOf(v, q.offset);
      v.throwIfAny();
      const tenants = await tenantsFor(caller, directory, q.projectId.trim());
      return { ...(await alerts.listRules({ tenants, limit, offset })), limit, offset };
    },

    /** One rule; NOT_FOUND when absent or outside the caller's scope. */
    getRule: (caller: Caller, id: string) => visibleRule(caller, id),

    /** Replaces every editable field; the rule keeps its id, project, creation time, cool-down state and events. */
    async updateRule(caller: Caller, id: string, input: AlertRuleInput): Promise<AlertRuleRecord> {
      const v = createViolations();
      const fields = ruleFieldsOf(v, input);
      v.throwIfAny();
      await visibleRule(caller, id);
      const updated = await alerts.replaceRule(id, fields, now());
      if (!updated) throw ruleNotFound();
      return updated;
    },

    /** Deletes a rule; its past events remain. */
    async deleteRule(caller: Caller, id: string): Promise<void> {
      await visibleRule(caller, id);
      if (!(await alerts.deleteRule(id))) throw ruleNotFound();
    },

    /** Events visible to the caller matching every filter given, newest first. */
    async listEvents(caller: Caller, q: {
      severity: string; acknowledged?: boolean | undefined; limit: number; offset: number; projectId: string;
    }): Promise<PageOf<AlertEventRecord>> {
      const v = createViolations();
      const severity = severityFilterOf(v, q.severity);
      const limit = limitOf(v, q.limit);
      const offset = offsetOf(v, q.offset);
      v.throwIfAny();
      const tenants = await tenantsFor(caller, directory, q.projectId.trim());
      return { ...(await alerts.listEvents({ tenants, severity, acknowledged: q.acknowledged, limit, offset })), limit, offset };
    },

    /**
     * Acknowledges an event as the caller (its API key id, else its user
     * id). Acknowledging again changes nothing and answers the event as
     * first acknowledged. `note` is at most 1000 characters.
     */
    async acknowledgeEvent(caller: Caller, id: string, note: string): Promise<AlertEventRecord> {
      const v = createViolations();
      if (note.length > MAX_NOTE) v.add("note", `must be at most ${MAX_NOTE} characters`);
      v.throwIfAny();
      const event = id ? await alerts.getEvent(id) : undefined;
      if (!event || !scopeHasProject(await readScopeOf(caller, directory), event.projectId)) throw eventNotFound();
      const acked = await alerts.acknowledge(id, { at: now(), by: caller.apiKeyId ?? caller.userId, note });
      if (!acked) throw eventNotFound();
      return acked;
    },

    /**
     * Each new event visible to the caller and matching the filters, from
     * the call on (earlier events are not replayed), until `signal` aborts.
     * The caller's projects are those it had when the watch began.
     */
    async *watchEvents(caller: Caller, q: { severity: string; projectId: string }, signal: AbortSignal): AsyncGenerator<AlertEventRecord> {
      const v = createViolations();
      const severity = severityFilterOf(v, q.severity);
      v.throwIfAny();
      const tenants = await tenantsFor(caller, directory, q.projectId.trim());
      const after = BigInt(await alerts.latestSeq());
      const feed = followFeed({
        after, signal, notifier: deps.notifier, intervalMs: deps.pollMs,
        read: (a, limit) => alerts.eventsAfter(Number(a), limit), versionOf: (e) => BigInt(e.seq),
      });
      for await (const e of feed) {
        if ((tenants === "all" || tenants.includes(e.projectId)) && (!severity || e.severity === severity)) yield e;
      }
    },
  };
}

export type AlertsDomain = ReturnType<typeof createAlertsDomain>;

import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fieldViolationsOf } from "../../../lib/errors.js";
import { createNotifier, type Notifier } from "../../../lib/event-feed.js";
import type { Caller } from "../../../lib/identity.js";
import type { DocumentDb } from "../../../lib/stores/documents.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { rejectionOf } from "../../../test/support/rejection.js";
import { createAlertStore, type AlertEventRecord, type AlertStore } from "../storage/alerts.js";
import { createAlertsDomain, type AlertsDomain } from "./alerts.js";
import type { AlertRuleInput } from "./alerts-input.js";

// Fake clock: only the tests move it, and only forward.
let t = new Date("2026-01-01T00:00:00Z");
const now = () => t;
const advance = (seconds: number) => {
  t = new Date(t.getTime() + seconds * 1_000);
};

/** createNotifier, also telling the test when a feed reader starts waiting (it has read all there was). */
function observedNotifier(): Notifier & { nextWait(): Promise<void> } {
  const inner = createNotifier();
  let waiting: (() => void)[] = [];
  return {
    notify: () => inner.notify(),
    wait(ms, signal) {
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
      return inner.wait(ms, signal);
    },
    nextWait: () => new Promise<void>((resolve) => { waiting.push(resolve); }),
  };
}

const alice: Caller = { userId: "alice", roles: ["user"], isAdmin: false };
const bob: Caller = { userId: "bob", roles: ["user"], isAdmin: false };
const aliceKey: Caller = { userId: "alice", roles: ["user"], isAdmin: false, projectId: "p-a1", apiKeyId: "key-1" };
const admin: Caller = { userId: "root", roles: ["user", "admin"], isAdmin: true };
const owned: Record<string, string[]> = { alice: ["p-a1", "p-a2"], bob: ["p-b"] };

let db: DocumentDb;
let store: AlertStore;
let notifier: ReturnType<typeof observedNotifier>;
let domain: AlertsDomain;

beforeEach(async () => {
  db = createEmbeddedDocumentDb();
  store = createAlertStore(db);
  await store.prepare();
  notifier = observedNotifier();
  const directory = { projectIdsOf: async (userId: string) => owned[userId] ?? [] };
  domain = createAlertsDomain({ alerts: store, directory, now, newId: randomUUID, notifier, pollMs: 50 });
});
afterEach(async () => {
  await db.close();
});

const fieldsOf = (err: unknown) => fieldViolationsOf(err).map((v) => v.field);

function ruleInput(overrides: Partial<AlertRuleInput & { projectId: string }> = {}): AlertRuleInput & { projectId: string } {
  return {
    projectId: "p-a1", name: "errors high", service: "", route: "", metric: "error_rate", windowSeconds: 300,
    threshold: 5, operator: "gt", coolDownSeconds: 600, severity: "warning", ...overrides,
  };
}

function makeEvent(overrides: Partial<AlertEventRecord> = {}): Omit<AlertEventRecord, "seq"> {
  return {
    id: randomUUID(), ruleId: "rule-1", ruleName: "errors high", projectId: "p-a1", severity: "warning",
    metric: "error_rate", value: 7.5, threshold: 5, operator: "gt", message: "error_rate 7.5 > 5 over 300s",
    triggeredAt: now(), acknowledged: false, acknowledgedBy: "", acknowledgeNote: "", ...overrides,
  };
}

describe("alert rule validation", () => {
  it("creates a rule with the fields given, enabled by default, stamped with the clock", async () => {
    const rule = await domain.createRule(alice, ruleInput({ name: "  errors high  " }));
    expect(rule).toMatchObject({ projectId: "p-a1", name: "errors high", metric: "error_rate", enabled: true, createdAt: t, updatedAt: t });
    expect(await domain.getRule(alice, rule.id)).toEqual(rule);
  });

  it("keeps enabled false when sent", async () => {
    expect((await domain.createRule(alice, ruleInput({ enabled: false }))).enabled).toBe(false);
  });

  it.each<[string, Partial<AlertRuleInput>]>([
    ["name", { name: "" }],
    ["name", { name: "x".repeat(101) }],
    ["service", { service: "billing" }],
    ["route", { route: "api/v1/projects" }],
    ["route", { route: "/api/{id" }],
    ["metric", { metric: "" }],
    ["metric", { metric: "latency_p90" }],
    ["operator", { operator: "ne" }],
    ["window_seconds", { windowSeconds: 59 }],
    ["window_seconds", { windowSeconds: 86_401 }],
    ["cool_down_seconds", { coolDownSeconds: -1 }],
    ["cool_down_seconds", { coolDownSeconds: 86_401 }],
    ["severity", { severity: "fatal" }],
    ["threshold", { threshold: Number.NaN }],
    ["threshold", { threshold: Number.POSITIVE_INFINITY }],
  ])("names %s when it is invalid (%j)", async (field, bad) => {
    const err = await rejectionOf(domain.createRule(alice, ruleInput(bad)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual([field]);
  });

  it("names every bad field at once, project_id included", async () => {
    const err = await rejectionOf(domain.createRule(alice, {
      projectId: "", name: "", service: "x", route: "x", metric: "x", windowSeconds: 0, threshold: Number.NaN,
      operator: "x", coolDownSeconds: -5, severity: "x",
    }));
    expect(fieldsOf(err).sort()).toEqual([
      "cool_down_seconds", "metric", "name", "operator", "project_id", "route", "service", "severity", "threshold", "window_seconds",
    ]);
  });

  it("accepts the bounds of every range and each documented value", async () => {
    const base = { windowSeconds: 60, coolDownSeconds: 0, name: "x".repeat(100), route: "/api/v1/projects/{id}", service: "auth" };
    await domain.createRule(alice, ruleInput({ ...base, metric: "uptime", operator: "lte", severity: "critical" }));
    await domain.createRule(alice, ruleInput({ windowSeconds: 86_400, coolDownSeconds: 86_400, metric: "latency_p99", operator: "eq", severity: "info" }));
    for (const metric of ["request_count", "latency_p50", "latency_p95"]) await domain.createRule(alice, ruleInput({ metric }));
    for (const operator of ["gte", "lt"]) await domain.createRule(alice, ruleInput({ operator, threshold: -1.5 }));
    for (const service of ["project", "logging", "analytics"]) await domain.createRule(alice, ruleInput({ service }));
    expect((await domain.listRules(alice, { limit: 100, offset: 0, projectId: "" })).total).toBe(10);
  });

  it("checks update input like create input", async () => {
    const rule = await domain.createRule(alice, ruleInput());
    const err = await rejectionOf(domain.updateRule(alice, rule.id, ruleInput({ windowSeconds: 30, severity: "" })));
    expect(fieldsOf(err).sort()).toEqual(["severity", "window_seconds"]);
  });
});

describe("alert rule scoping", () => {
  it("requires project_id from a user", async () => {
    const err = await rejectionOf(domain.createRule(alice, ruleInput({ projectId: "" })));
    expect(fieldsOf(err)).toEqual(["project_id"]);
  });

  it("answers NotFound for a project the user does not own, existing or not", async () => {
    expect((await rejectionOf(domain.createRule(alice, ruleInput({ projectId: "p-b" })))).code).toBe(Code.NotFound);
    expect((await rejectionOf(domain.createRule(alice, ruleInput({ projectId: "p-none" })))).code).toBe(Code.NotFound);
  });

  it("puts an API key's rule in the key's project by default and refuses another project", async () => {
    expect((await domain.createRule(aliceKey, ruleInput({ projectId: "" }))).projectId).toBe("p-a1");
    expect((await rejectionOf(domain.createRule(aliceKey, ruleInput({ projectId: "p-a2" })))).code).toBe(Code.NotFound);
  });

  it("lets an admin create a rule in any project but requires one", async () => {
    expect((await domain.createRule(admin, ruleInput({ projectId: "p-b" }))).projectId).toBe("p-b");
    expect(fieldsOf(await rejectionOf(domain.createRule(admin, ruleInput({ projectId: "" }))))).toEqual(["project_id"]);
  });

  it("answers NotFound for another tenant's rule on get, update and delete", async () => {
    const rule = await domain.createRule(bob, ruleInput({ projectId: "p-b" }));
    for (const call of [
      () => domain.getRule(alice, rule.id), () => domain.updateRule(alice, rule.id, ruleInput()), () => domain.deleteRule(alice, rule.id),
      () => domain.getRule(aliceKey, rule.id), () => domain.getRule(alice, ""),
    ]) expect((await rejectionOf(call())).code).toBe(Code.NotFound);
    expect((await domain.getRule(bob, rule.id)).name).toBe(rule.name);
    expect((await domain.getRule(admin, rule.id)).name).toBe(rule.name);
  });

  it("hides a rule of the user's other project from the user's API key", async () => {
    const rule = await domain.createRule(alice, ruleInput({ projectId: "p-a2" }));
    expect((await rejectionOf(domain.getRule(aliceKey, rule.id))).code).toBe(Code.NotFound);
  });

  it("replaces every editable field, keeping id, project and creation time", async () => {
    const rule = await domain.createRule(alice, ruleInput());
    advance(60);
    const updated = await domain.updateRule(alice, rule.id, ruleInput({
      projectId: "p-a2", name: "slow", metric: "latency_p95", threshold: 300, operator: "gte", route: "/api/v1/x", enabled: false,
    }));
    expect(updated).toEqual({ ...rule, name: "slow", metric: "latency_p95", threshold: 300, operator: "gte", route: "/api/v1/x", enabled: false, updatedAt: t });
    expect(await domain.getRule(alice, rule.id)).toEqual(updated);
  });

  it("deletes a rule, after which it is NotFound", async () => {
    const rule = await domain.createRule(alice, ruleInput());
    await domain.deleteRule(alice, rule.id);
    expect((await rejectionOf(domain.getRule(alice, rule.id))).code).toBe(Code.NotFound);
    expect((await rejectionOf(domain.deleteRule(alice, rule.id))).code).toBe(Code.NotFound);
  });
});

describe("listing alert rules", () => {
  it("lists the caller's rules oldest first with the total, page by page", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await domain.createRule(alice, ruleInput({ name: `r${i}`, projectId: i % 2 ? "p-a2" : "p-a1" }))).id);
      advance(1);
    }
    await domain.createRule(bob, ruleInput({ projectId: "p-b" }));
    const page = await domain.listRules(alice, { limit: 2, offset: 1, projectId: "" });
    expect(page).toMatchObject({ total: 5, limit: 2, offset: 1 });
    expect(page.items.map((r) => r.id)).toEqual(ids.slice(1, 3));
    expect((await domain.listRules(alice, { limit: 0, offset: 0, projectId: "p-a2" })).items.map((r) => r.name)).toEqual(["r1", "r3"]);
    expect((await domain.listRules(aliceKey, { limit: 0, offset: 0, projectId: "" })).total).toBe(3);
    expect((await domain.listRules(admin, { limit: 0, offset: 0, projectId: "" })).total).toBe(6);
  });

  it("matches nothing for a project outside the caller's scope", async () => {
    await domain.createRule(bob, ruleInput({ projectId: "p-b" }));
    expect(await domain.listRules(alice, { limit: 0, offset: 0, projectId: "p-b" })).toMatchObject({ items: [], total: 0, limit: 10 });
  });

  it("names a bad limit and offset", async () => {
    const err = await rejectionOf(domain.listRules(alice, { limit: 101, offset: -1, projectId: "" }));
    expect(fieldsOf(err).sort()).toEqual(["limit", "offset"]);
  });
});

describe("alert events", () => {
  it("lists visible events newest first with filters, paging and total", async () => {
    const stored: AlertEventRecord[] = [];
    for (const [i, o] of ([
      { severity: "warning" }, { severity: "critical" }, { severity: "critical", projectId: "p-a2" },
      { severity: "info", projectId: "p-b" }, { severity: "critical", acknowledged: true },
    ] as Partial<AlertEventRecord>[]).entries()) {
      stored.push(await store.insertEvent(makeEvent({ ...o, ruleName: `e${i}` })));
    }
    const names = (p: { items: AlertEventRecord[] }) => p.items.map((e) => e.ruleName);
    const all = await domain.listEvents(alice, { severity: "", limit: 0, offset: 0, projectId: "" });
    expect(all).toMatchObject({ total: 4, limit: 10, offset: 0 });
    expect(names(all)).toEqual(["e4", "e2", "e1", "e0"]);
    expect(names(await domain.listEvents(alice, { severity: "critical", limit: 0, offset: 0, projectId: "" }))).toEqual(["e4", "e2", "e1"]);
    expect(names(await domain.listEvents(alice, { severity: "critical", acknowledged: false, limit: 0, offset: 0, projectId: "" }))).toEqual(["e2", "e1"]);
    expect(names(await domain.listEvents(alice, { severity: "", acknowledged: true, limit: 0, offset: 0, projectId: "" }))).toEqual(["e4"]);
    expect(names(await domain.listEvents(alice, { severity: "", limit: 0, offset: 0, projectId: "p-a2" }))).toEqual(["e2"]);
    expect(names(await domain.listEvents(aliceKey, { severity: "", limit: 0, offset: 0, projectId: "" }))).toEqual(["e4", "e1", "e0"]);
    const page = await domain.listEvents(alice, { severity: "", limit: 2, offset: 2, projectId: "" });
    expect([page.total, names(page)]).toEqual([4, ["e1", "e0"]]);
    expect((await domain.listEvents(admin, { severity: "", limit: 0, offset: 0, projectId: "" })).total).toBe(5);
    expect(names(await domain.listEvents(alice, { severity: "", limit: 0, offset: 0, projectId: "p-b" }))).toEqual([]);
  });

  it("names a bad severity filter, limit and offset", async () => {
    const err = await rejectionOf(domain.listEvents(alice, { severity: "fatal", limit: -1, offset: -2, projectId: "" }));
    expect(fieldsOf(err).sort()).toEqual(["limit", "offset", "severity"]);
  });

  it("numbers events strictly increasing even when stored concurrently", async () => {
    const events = await Promise.all(Array.from({ length: 20 }, () => store.insertEvent(makeEvent())));
    expect(new Set(events.map((e) => e.seq)).size).toBe(20);
    expect((await store.eventsAfter(0, 100)).map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(await store.latestSeq()).toBe(20);
  });
});

describe("acknowledging alert events", () => {
  it("records when, by whom and the note", async () => {
    const event = await store.insertEvent(makeEvent());
    advance(30);
    const acked = await domain.acknowledgeEvent(alice, event.id, "on it");
    expect(acked).toEqual({ ...event, acknowledged: true, acknowledgedAt: t, acknowledgedBy: "alice", acknowledgeNote: "on it" });
  });

  it("is idempotent: a second acknowledgement answers the first one unchanged", async () => {
    const event = await store.insertEvent(makeEvent());
    const first = await domain.acknowledgeEvent(aliceKey, event.id, "");
    expect(first.acknowledgedBy).toBe("key-1");
    advance(60);
    expect(await domain.acknowledgeEvent(alice, event.id, "again")).toEqual(first);
    expect((await store.getEvent(event.id))).toEqual(first);
  });

  it("keeps the first of concurrent acknowledgements", async () => {
    const event = await store.insertEvent(makeEvent());
    const answers = await Promise.all([domain.acknowledgeEvent(alice, event.id, "a"), domain.acknowledgeEvent(admin, event.id, "b")]);
    expect(answers[1]).toEqual(answers[0]);
  });

  it("answers NotFound for another tenant's event or a missing one", async () => {
    const event = await store.insertEvent(makeEvent({ projectId: "p-b" }));
    expect((await rejectionOf(domain.acknowledgeEvent(alice, event.id, ""))).code).toBe(Code.NotFound);
    expect((await rejectionOf(domain.acknowledgeEvent(alice, randomUUID(), ""))).code).toBe(Code.NotFound);
    expect((await store.getEvent(event.id))?.acknowledged).toBe(false);
  });

  it("names a note longer than 1000 characters", async () => {
    const event = await store.insertEvent(makeEvent());
    expect(fieldsOf(await rejectionOf(domain.acknowledgeEvent(alice, event.id, "x".repeat(1001))))).toEqual(["note"]);
    expect((await domain.acknowledgeEvent(alice, event.id, "x".repeat(1000))).acknowledgeNote).toHaveLength(1000);
  });
});

describe("watching alert events", () => {
  /** Starts a watch and resolves once it has read what there was and waits for more. */
  async function watch(caller: Caller, q: { severity: string; projectId: string }) {
    const ctrl = new AbortController();
    const waiting = notifier.nextWait();
    const feed = domain.watchEvents(caller, q, ctrl.signal);
    const next = feed.next();
    await waiting;
    return { next, feed, stop: () => ctrl.abort() };
  }

  it("delivers a new event within a second and does not replay earlier ones", async () => {
    await store.insertEvent(makeEvent({ ruleName: "old" }));
    const w = await watch(alice, { severity: "", projectId: "" });
    const started = performance.now();
    await store.insertEvent(makeEvent({ ruleName: "new" }));
    notifier.notify();
    const got = await w.next;
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(got.value?.ruleName).toBe("new");
    w.stop();
    expect((await w.feed.next()).done).toBe(true);
  });

  it("delivers an event another replica stored (no local wake-up) by polling", async () => {
    const w = await watch(alice, { severity: "", projectId: "" });
    const started = performance.now();
    await store.insertEvent(makeEvent({ ruleName: "remote" }));
    expect((await w.next).value?.ruleName).toBe("remote");
    expect(performance.now() - started).toBeLessThan(1_000);
    w.stop();
  });

  it("delivers only events in the caller's scope matching the filters", async () => {
    const w = await watch(alice, { severity: "critical", projectId: "p-a2" });
    await store.insertEvent(makeEvent({ ruleName: "other tenant", projectId: "p-b", severity: "critical" }));
    await store.insertEvent(makeEvent({ ruleName: "other project", projectId: "p-a1", severity: "critical" }));
    await store.insertEvent(makeEvent({ ruleName: "other severity", projectId: "p-a2", severity: "info" }));
    await store.insertEvent(makeEvent({ ruleName: "match", projectId: "p-a2", severity: "critical" }));
    notifier.notify();
    expect((await w.next).value?.ruleName).toBe("match");
    w.stop();
  });

  it("names a bad severity filter", async () => {
    const feed = domain.watchEvents(alice, { severity: "loud", projectId: "" }, new AbortController().signal);
    expect(fieldsOf(await rejectionOf(feed.next()))).toEqual(["severity"]);
  });
});

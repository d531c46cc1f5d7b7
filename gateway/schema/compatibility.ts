import type { DescEnum, DescField, DescMessage, DescMethod } from "@bufbuild/protobuf";
import type { HttpBinding } from "../transcoding/bindings.js";
import { routeKey } from "./route-overlap.js";

/**
 * Why replacing the routes `before` with `after` would break a client of
 * `before` (empty: it would not). Per route — keyed by verb and template
 * shape, so renaming a path variable is no change — it must still exist,
 * bound to the same RPC of the same kind with the same `body` and
 * `response_body`, and the request and response messages must stay
 * compatible (messageProblems). New routes, new methods and new fields are
 * compatible; methods without routes are not compared.
 */
export function breakingChanges(before: readonly HttpBinding[], after: readonly HttpBinding[]): string[] {
  const next = new Map(after.map((b) => [routeKey(b), b]));
  const problems: string[] = [];
  for (const old of before) {
    const label = `${old.verb} ${old.template.source}`;
    const now = next.get(routeKey(old));
    if (now === undefined) {
      problems.push(`${label} (${rpcName(old.method)}) was removed`);
      continue;
    }
    if (rpcName(now.method) !== rpcName(old.method)) {
      problems.push(`${label} is now bound to ${rpcName(now.method)} (was ${rpcName(old.method)})`);
      continue;
    }
    if (now.method.methodKind !== old.method.methodKind) problems.push(`${label}: ${rpcName(old.method)} changed from ${old.method.methodKind} to ${now.method.methodKind}`);
    if (now.body !== old.body) problems.push(`${label}: body changed from "${old.body}" to "${now.body}"`);
    if (now.responseBody !== old.responseBody) problems.push(`${label}: response_body changed from "${old.responseBody}" to "${now.responseBody}"`);
    problems.push(...messageProblems(old.method.input, now.method.input).map((p) => `${label}: request ${p}`));
    problems.push(...messageProblems(old.method.output, now.method.output).map((p) => `${label}: response ${p}`));
  }
  return [...new Set(problems)];
}

/**
 * Why JSON or binary written for `before` would not mean the same to
 * `after`: every field of `before` must remain, by number, with the same
 * name, JSON name and kind (singular scalar, enum or message; list; map) and a
 * compatible type — the same scalar, an enum keeping every value, a message
 * compatible in turn (same rules, recursively), a well-known type unchanged.
 */
export function messageProblems(before: DescMessage, after: DescMessage): string[] {
  const problems: string[] = [];
  compareMessages(before, after, before.typeName, problems, new Set());
  return problems;
}

function compareMessages(before: DescMessage, after: DescMessage, at: string, problems: string[], seen: Set<string>): void {
  const pair = `${before.typeName}→${after.typeName}`;
  if (seen.has(pair)) return; // recursive types: compared once
  seen.add(pair);
  if (isWellKnown(before) || isWellKnown(after)) {
    if (before.typeName !== after.typeName) problems.push(`${at}: type changed from ${before.typeName} to ${after.typeName}`);
    return;
  }
  for (const old of before.fields) {
    const now = after.fields.find((f) => f.number === old.number);
    const path = `${at}.${old.name}`;
    if (now === undefined) {
      problems.push(`${path} (field ${old.number}) was removed`);
      continue;
    }
    if (now.name !== old.name || now.jsonName !== old.jsonName) {
      problems.push(`${path} (field ${old.number}) was renamed to ${now.name}`);
      continue;
    }
    if (now.fieldKind !== old.fieldKind) {
      problems.push(`${path} changed from a ${old.fieldKind} field to a ${now.fieldKind} field`);
      continue;
    }
    compareValues(old, now, path, problems, seen);
  }
}

/** Compares what one value of each field holds: list elements, map keys and values, or the singular value. */
function compareValues(old: DescField, now: DescField, path: string, problems: string[], seen: Set<string>): void {
  if (old.fieldKind === "map" && now.fieldKind === "map" && old.mapKey !== now.mapKey) {
    problems.push(`${path} map key changed`);
    return;
  }
  const kindOf = (f: DescField) => f.fieldKind === "list" ? f.listKind : f.fieldKind === "map" ? f.mapKind : f.fieldKind;
  const scalarOf = (f: DescField) => (f.fieldKind === "scalar" || f.fieldKind === "list" || f.fieldKind === "map" ? f.scalar : undefined);
  if (kindOf(old) !== kindOf(now) || scalarOf(old) !== scalarOf(now)) {
    problems.push(`${path} changed type`);
    return;
  }
  if (old.message !== undefined && now.message !== undefined) compareMessages(old.message, now.message, path, problems, seen);
  if (old.enum !== undefined && now.enum !== undefined) compareEnums(old.enum, now.enum, path, problems);
}

function compareEnums(before: DescEnum, after: DescEnum, at: string, problems: string[]): void {
  for (const v of before.values) {
    if (!after.values.some((w) => w.number === v.number && w.name === v.name)) problems.push(`${at}: enum value ${v.name} (${v.number}) was removed or renumbered`);
  }
}

/** google.protobuf.* messages have their own JSON forms: compared by name, not by field. */
function isWellKnown(m: DescMessage): boolean {
  return m.typeName.startsWith("google.protobuf.");
}

function rpcName(m: DescMethod): string {
  return `${m.parent.typeName}/${m.name}`;
}

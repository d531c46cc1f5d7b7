import { create, toJson, type JsonValue, type Message } from "@bufbuild/protobuf";
import type { DescMethod } from "@bufbuild/protobuf";
import { methodPolicy } from "../../lib/policy.js";
import type { HttpBinding } from "./bindings.js";
import { isJsonObject, isPlainMessage } from "./fields.js";

/**
 * proto3 JSON options of every REST answer: lowerCamelCase names, enums by
 * name, 64-bit integers as strings, and fields at their default value
 * emitted (`alwaysEmitImplicit`), so clients see `0`, `""`, `false` and `[]`
 * rather than missing keys (API.md's answers list them). Unset message
 * fields and unset `optional` scalars are still left out.
 */
const JSON_OPTIONS = { alwaysEmitImplicit: true } as const;

/**
 * The JSON answer for one response message (or one message of a server
 * stream): the whole message, or with `response_body` only that field's
 * JSON. An unset message field named by `response_body` renders as that
 * message with every field at its default; an unset `optional` scalar or
 * well-known type renders as null.
 */
export function renderResponse(binding: HttpBinding, message: Message): JsonValue {
  const json = toJson(binding.method.output, message, JSON_OPTIONS);
  const field = binding.responseBodyField;
  if (field === undefined) return json;
  const value = isJsonObject(json) ? json[field.jsonName] : undefined;
  if (value !== undefined) return value;
  if (field.fieldKind === "message" && isPlainMessage(field.message)) {
    return toJson(field.message, create(field.message), JSON_OPTIONS);
  }
  return null;
}

/** HTTP status of a successful REST answer: the method's policy `success_status` (e.g. 201 on create), else 200. */
export function successStatus(method: DescMethod): number {
  return methodPolicy(method).successStatus || 200;
}

import { createHash } from "node:crypto";
import { toBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { Access } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { bindingsOf, type HttpBinding } from "../transcoding/bindings.js";
import { createRouter } from "../transcoding/router.js";
import { breakingChanges } from "./compatibility.js";
import { reflectedServices } from "./reflected-services.js";
import { overlappingRoutes } from "./route-overlap.js";

/** One reflection cluster's schema as loaded: its services, their routes, and what it was built from. */
export interface ReflectedSchema {
  readonly services: readonly DescService[];
  readonly bindings: readonly HttpBinding[];
  /** SHA-256 of the reflected files: equal fingerprints, equal schemas. */
  readonly fingerprint: string;
}

/** The fingerprint of reflected files, taken before anything changes them. */
export function fingerprintOf(files: ReadonlyMap<string, FileDescriptorProto>): string {
  const hash = createHash("sha256");
  for (const name of [...files.keys()].sort()) hash.update(name).update("\0").update(toBinary(FileDescriptorProtoSchema, files.get(name)!));
  return hash.digest("hex");
}

/**
 * Builds the schema of `services` from reflected files (reflectedServices:
 * default policy applied) and their routes (bindingsOf). Throws an Error
 * whose message lists what is wrong: a missing import or service, invalid
 * google.api.http rules.
 */
export function buildReflectedSchema(files: ReadonlyMap<string, FileDescriptorProto>, services: readonly string[], defaultAccess: Access): ReflectedSchema {
  const fingerprint = fingerprintOf(files);
  const described = reflectedServices(files, { services, defaultAccess });
  return { services: described, bindings: bindingsOf(described), fingerprint };
}

/**
 * Why `candidate` may not replace `current` (undefined: nothing loaded yet)
 * beside the routes of the others (built-in services and other reflection
 * clusters): two of its own routes the same, a route overlapping one of the
 * others', or a change that breaks a current route (compatibility.ts).
 */
export function refusalsOf(candidate: ReflectedSchema, current: ReflectedSchema | undefined, others: readonly HttpBinding[]): string[] {
  const problems: string[] = [];
  try {
    createRouter(candidate.bindings);
  } catch (err) {
    problems.push((err as Error).message);
  }
  problems.push(...overlappingRoutes(candidate.bindings, others));
  if (current !== undefined) problems.push(...breakingChanges(current.bindings, candidate.bindings));
  return problems;
}

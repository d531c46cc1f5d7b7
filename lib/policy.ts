import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { Access, policy, type MethodPolicy } from "../gen/mesh/gateway/v1/policy_pb.js";

/**
 * The `(mesh.gateway.v1.policy)` option of a method. A method without one
 * gets access UNSPECIFIED, which every consumer treats as refused (fail closed).
 */
export function methodPolicy(method: DescMethod): MethodPolicy {
  let p = policies.get(method);
  if (p === undefined) policies.set(method, (p = getOption(method, policy)));
  return p;
}

/** getOption decodes the option from the descriptor's bytes on every call; a method's policy never changes. */
const policies = new WeakMap<DescMethod, MethodPolicy>();

/** Whether the method declares a policy at all. */
export function hasMethodPolicy(method: DescMethod): boolean {
  return hasOption(method, policy);
}

export { Access };

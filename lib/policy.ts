import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { Access, policy, type MethodPolicy } from "../gen/mesh/gateway/v1/policy_pb.js";

/**
 * The `(mesh.gateway.v1.policy)` option of a method. A method without one
 * gets access UNSPECIFIED, which every consumer treats as refused (fail closed).
 */
export function methodPolicy(method: DescMethod): MethodPolicy {
  return getOption(method, policy);
}

/** Whether the method declares a policy at all. */
export function hasMethodPolicy(method: DescMethod): boolean {
  return hasOption(method, policy);
}

export { Access };

import { AnalyticsService } from "../../gen/mesh/analytics/v1/analytics_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";

/**
 * The gRPC services of the mesh, by fully-qualified name: what a cluster's
 * `services` may list unless the caller of `loadGatewayConfig` passes its own
 * set. A service added to `proto/` joins this list.
 */
export const MESH_SERVICES: ReadonlySet<string> = new Set(
  [AuthService, ProjectService, LoggingService, AnalyticsService].map((s) => s.typeName),
);

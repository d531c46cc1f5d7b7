import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { GatewayConfigSchema, type Filter, type GatewayConfig } from "../../gen/mesh/gateway/v1/config_pb.js";

/**
 * A generated message type as `loadGatewayConfig` returns it: read-only, every
 * sub-message and `optional` scalar present (defaults applied), and no oneof
 * left unset. Values are still protobuf-es messages (durations are
 * `google.protobuf.Duration`; read them with `durationMs` from
 * `@bufbuild/protobuf/wkt`), so `configToJson` can dump them.
 */
export type Resolved<T> = T extends string | number | boolean | bigint
  ? T
  : T extends readonly (infer E)[]
    ? readonly Resolved<E>[]
    : T extends { case: undefined }
      ? never // the unset arm of a oneof: ruled out by defaults or validation
      : { readonly [K in Exclude<keyof T, "$unknown">]-?: Resolved<Exclude<T[K], undefined>> };

/** The gateway's validated, defaulted, deeply frozen configuration. */
export type ResolvedGatewayConfig = Resolved<GatewayConfig>;

/** One entry of the resolved filter chain: `{ case: "cors", value: CorsFilter }`, ... */
export type ResolvedFilter = ResolvedGatewayConfig["filters"][number];

/** A filter's name as it is keyed in YAML: "requestId", "cors", ..., "router". */
export type FilterName = NonNullable<Filter["config"]["case"]>;

/** The config of the filter named `name`, if the chain has it. */
export function findFilter<N extends FilterName>(cfg: ResolvedGatewayConfig, name: N): FilterConfig<N> | undefined {
  const hit = cfg.filters.find((f) => f.config.case === name);
  return hit?.config.value as FilterConfig<N> | undefined;
}

/** The resolved config type of the filter named N: FilterConfig<"cors"> is the CorsFilter. */
export type FilterConfig<N extends FilterName> = Extract<ResolvedFilter["config"], { case: N }>["value"];

/** The config in proto3 JSON, for the admin `/config_dump` and logs. */
export function configToJson(cfg: ResolvedGatewayConfig): JsonValue {
  // Resolved<GatewayConfig> is GatewayConfig with read-only arrays and no
  // undefined members; toJson only reads it.
  return toJson(GatewayConfigSchema, cfg as unknown as GatewayConfig);
}

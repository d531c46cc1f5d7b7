import type { DescService } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Cluster } from "../clusters/cluster.js";
import type { ResolvedGatewayConfig } from "../config/resolved-config.js";
import { openApiDocument, type OpenApiInfo } from "../openapi/document.js";
import type { OpenApiDocument } from "../openapi/spec-types.js";
import { bindingsOf, type HttpBinding } from "../transcoding/bindings.js";
import { createRouter, type Router } from "../transcoding/router.js";
import { fetchFileDescriptors } from "./reflection-client.js";
import { createReflectionSource, type ReflectionSource, type ReflectionSourceDeps, type ReflectionSourceOptions } from "./reflection-source.js";

/** What the gateway serves right now: built-in services plus every reflection cluster's last good schema. */
export interface GatewaySchema {
  /** Routes of every service; follows schema changes. */
  readonly router: Router;
  /** Every service reachable through the gateway now (built-in first); a new list after each change, the same one until then. */
  services(): readonly DescService[];
  /** The OpenAPI document of every route now (made again after a change). */
  openApi(): OpenApiDocument;
  /**
   * The error for a REST request no route matches: NOT_FOUND, or UNAVAILABLE
   * while a reflection cluster's schema has never loaded (the route may be its).
   */
  noRoute(verb: string, path: string): ConnectError;
  /** The reflection cluster that serves `service` but has not loaded it yet, if any. */
  pendingCluster(service: string): string | undefined;
  /** Calls `listener` after each change of services or routes. */
  onChange(listener: () => void): void;
  /** Loads every reflection cluster's schema now (each also does on its interval). */
  refresh(): Promise<void>;
  /** Stops the refresh timers and any load in flight. */
  close(): void;
}

export interface GatewaySchemaOptions {
  readonly cfg: ResolvedGatewayConfig;
  /** Clusters by name: reflection goes through the cluster's own transport. */
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** The services compiled into the gateway. */
  readonly builtin: readonly DescService[];
  readonly logger: Logger;
  readonly openApiInfo: OpenApiInfo;
  /** The reflection client; tests replace it. */
  readonly fetch?: typeof fetchFileDescriptors;
}

/**
 * Starts the gateway's schema: the built-in services' routes, and for each
 * cluster with `reflection` its services loaded over server reflection
 * (reflection-source.ts) now — startup waits for that first attempt, at most
 * the cluster's request timeout, and goes on without the routes of an
 * upstream that does not answer — and again every `refreshInterval`.
 */
export async function startGatewaySchema(opts: GatewaySchemaOptions): Promise<GatewaySchema> {
  const builtin = bindingsOf(opts.builtin);
  const stopping = new AbortController();
  const deps: ReflectionSourceDeps = {
    fetch: opts.fetch ?? fetchFileDescriptors, logger: opts.logger, signal: stopping.signal,
    others: (cluster) => [...builtin, ...sources.filter((s) => s.cluster !== cluster).flatMap((s) => s.current()?.bindings ?? [])],
  };
  const sources: ReflectionSource[] = sourceOptionsOf(opts.cfg, opts.clusters).map((o) => createReflectionSource(o, deps));
  const reflected = () => sources.flatMap((s) => s.current() ?? []);
  const listeners: (() => void)[] = [];
  let router = createRouter(builtin);
  let services: readonly DescService[] = opts.builtin;
  let document: OpenApiDocument | undefined;
  const changed = () => {
    router = createRouter(allBindings(builtin, reflected()));
    services = [...opts.builtin, ...reflected().flatMap((r) => r.services)];
    document = undefined;
    for (const listener of listeners) listener();
  };
  const refresh = async () => {
    if ((await Promise.all(sources.map((s) => s.refresh()))).some(Boolean)) changed();
  };
  await refresh();
  // A timer's rejected promise would end the process: a bug here is logged instead.
  const tick = (s: ReflectionSource) => s.refresh().then((c) => c && changed())
    .catch((err: unknown) => opts.logger.error({ err, cluster: s.cluster }, "refreshing a reflected schema failed unexpectedly"));
  const timers = sources.map((s) => setInterval(() => void tick(s), s.refreshMs).unref());
  return {
    router: { match: (verb, path) => router.match(verb, path) },
    services: () => services,
    openApi: () => (document ??= openApiDocument(allBindings(builtin, reflected()), opts.openApiInfo)),
    noRoute: (verb, path) => noRoute(verb, path, sources.filter((s) => !s.current()).map((s) => s.cluster)),
    pendingCluster: (service) => sources.find((s) => !s.current() && s.services.includes(service))?.cluster,
    onChange: (listener) => void listeners.push(listener),
    refresh,
    close() {
      timers.forEach(clearInterval);
      stopping.abort();
    },
  };
}

function allBindings(builtin: readonly HttpBinding[], reflected: readonly { readonly bindings: readonly HttpBinding[] }[]): HttpBinding[] {
  return [...builtin, ...reflected.flatMap((r) => r.bindings)];
}

function noRoute(verb: string, path: string, pending: readonly string[]): ConnectError {
  if (pending.length === 0) return new ConnectError(`no route for ${verb} ${path}`, Code.NotFound);
  return new ConnectError(`no route for ${verb} ${path} yet: the routes of cluster ${pending.join(", ")} are not loaded `
    + "(its server reflection has not answered); retry later", Code.Unavailable);
}

function sourceOptionsOf(cfg: ResolvedGatewayConfig, clusters: ReadonlyMap<string, Cluster>): ReflectionSourceOptions[] {
  return cfg.clusters.flatMap((c) => {
    const cluster = clusters.get(c.name);
    if (c.schema.case !== "reflection" || cluster === undefined) return [];
    const r = c.schema.value;
    return [{
      cluster: c.name, services: c.services, defaultAccess: r.defaultAccess, transport: cluster.transport,
      refreshMs: durationMs(r.refreshInterval), timeoutMs: durationMs(c.requestTimeout),
    }];
  });
}

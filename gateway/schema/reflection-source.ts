import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { ConnectError, type Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Access } from "../../gen/mesh/gateway/v1/policy_pb.js";
import type { HttpBinding } from "../transcoding/bindings.js";
import { fetchFileDescriptors } from "./reflection-client.js";
import { BUILTIN_FILES } from "./reflected-services.js";
import { buildReflectedSchema, fingerprintOf, refusalsOf, type ReflectedSchema } from "./reflected-schema.js";
import { routeKey } from "./route-overlap.js";

/** One cluster whose schema comes from server reflection, as its config says. */
export interface ReflectionSourceOptions {
  readonly cluster: string;
  /** The services it exposes. */
  readonly services: readonly string[];
  readonly defaultAccess: Access;
  readonly refreshMs: number;
  /** Deadline of one reflection conversation. */
  readonly timeoutMs: number;
  /** The cluster's transport: reflection reaches the same endpoints as calls. */
  readonly transport: Transport;
}

export interface ReflectionSourceDeps {
  readonly fetch: typeof fetchFileDescriptors;
  readonly logger: Logger;
  /** Aborted when the gateway stops: a load in flight ends quietly. */
  readonly signal: AbortSignal;
  /** The routes of every service but `cluster`'s right now: built-in ones and other reflection clusters'. */
  readonly others: (cluster: string) => readonly HttpBinding[];
}

export interface ReflectionSource extends ReflectionSourceOptions {
  /** The last good schema; undefined until one loads. */
  current(): ReflectedSchema | undefined;
  /** Loads the schema once (concurrent calls share the load); resolves true when the current schema changed. */
  refresh(): Promise<boolean>;
}

/**
 * One reflection cluster's schema over time. A refresh asks the upstream
 * (reflection-client.ts); when that fails, or the answer is the schema in
 * use, nothing changes. A new answer replaces the current schema unless
 * refusalsOf finds a reason not to (own route conflicts, overlap with other
 * services' routes, a breaking change); a refused answer leaves the current
 * schema (or none) in place. Each outcome is logged once — warn for failures
 * and refusals, with what was wrong; info for loads, with the routes added —
 * and the same outcome again at debug.
 */
export function createReflectionSource(opts: ReflectionSourceOptions, deps: ReflectionSourceDeps): ReflectionSource {
  let good: ReflectedSchema | undefined;
  let lastNote: string | undefined;
  let loading: Promise<boolean> | undefined;
  const note = (key: string, level: "info" | "warn", fields: object, msg: string) => {
    deps.logger[lastNote === key ? "debug" : level]({ cluster: opts.cluster, ...fields }, msg);
    lastNote = key;
  };

  const fetchFiles = () => deps.fetch(opts.transport, opts.services, { timeoutMs: opts.timeoutMs, signal: deps.signal, known: (f) => BUILTIN_FILES.has(f) })
    .catch((err: unknown) => {
      if (deps.signal.aborted) return undefined;
      const e = ConnectError.from(err);
      const then = good ? "keeping its last good schema" : "its routes are not served until it answers";
      note(`unreachable:${e.code}:${e.rawMessage}`, "warn", { err: e, retry_ms: opts.refreshMs }, `server reflection of cluster ${opts.cluster} failed; ${then}`);
      return undefined;
    });

  const judge = (files: ReadonlyMap<string, FileDescriptorProto>): { candidate?: ReflectedSchema; problems: string[] } => {
    try {
      const candidate = buildReflectedSchema(files, opts.services, opts.defaultAccess);
      return { candidate, problems: refusalsOf(candidate, good, deps.others(opts.cluster)) };
    } catch (err) {
      return { problems: [(err as Error).message] };
    }
  };

  const load = async (): Promise<boolean> => {
    const files = await fetchFiles();
    if (files === undefined) return false;
    const fingerprint = fingerprintOf(files);
    if (fingerprint === good?.fingerprint) {
      note(`loaded:${fingerprint}`, "info", {}, `server reflection of cluster ${opts.cluster} answers; its schema is unchanged`);
      return false;
    }
    // From here on synchronous: no other source changes between judging this one against it and accepting.
    const { candidate, problems } = judge(files);
    if (candidate === undefined || problems.length > 0) {
      const kept = good ? "kept its last good schema" : "its routes are not served";
      note(`refused:${fingerprint}`, "warn", { problems }, `refused the schema of cluster ${opts.cluster} from server reflection; ${kept}`);
      return false;
    }
    const before = new Set(good?.bindings.map(routeKey));
    good = candidate;
    const added = candidate.bindings.map(routeKey).filter((k) => !before.has(k));
    note(`loaded:${fingerprint}`, "info", { services: opts.services, routes: candidate.bindings.length, added },
      `loaded the schema of cluster ${opts.cluster} over server reflection`);
    return true;
  };

  return {
    ...opts,
    current: () => good,
    refresh: () => (loading ??= load().finally(() => { loading = undefined; })),
  };
}

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { GATEWAY_ENV_VARIABLES, upstreamEnvName } from "../../gateway/config/env-overrides.js";
import { loadGatewayConfig } from "../../gateway/config/load.js";
import { AnalyticsEnv, loadAnalyticsConfig } from "../../services/analytics/config.js";
import { AuthEnv, loadAuthConfig } from "../../services/auth/config.js";
import { LoggingEnv, loadLoggingConfig } from "../../services/logging/config.js";
import { ProjectEnv, loadProjectConfig } from "../../services/project/config.js";
import { idOf, render, root, schemaViolations, type KubeObject } from "./kubernetes.js";

// Every overlay rendered offline with kubectl kustomize, every object checked against its kind's schema, and the
// deployment rules of the mesh checked over what a cluster would receive.

const PROCESSES = ["auth", "project", "logging", "analytics", "gateway"] as const;
type Process = (typeof PROCESSES)[number];
const GRPC_PORTS: Record<Exclude<Process, "gateway">, number> = { auth: 50051, project: 50052, logging: 50053, analytics: 50054 };
/** Who may open connections to whom (DESIGN.md): the gateway calls every service; logging and analytics call project; analytics calls logging and probes every service's health. */
const CALLERS: Record<string, readonly string[]> = {
  auth: ["gateway", "analytics"], project: ["gateway", "logging", "analytics"], logging: ["gateway", "analytics"], analytics: ["gateway"],
  postgres: ["auth", "project"], mongodb: ["logging", "analytics"], redis: ["gateway"],
};
/** SIGTERM: the drain (SHUTDOWN_DRAIN_MS, default 10 s; the gateway's drainTimeout) plus the span flush (≤ 5 s). */
const SHUTDOWN_BUDGET_SECONDS = 15;

interface Container {
  name: string; image: string; args?: string[]; command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: unknown } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe; livenessProbe?: Probe; startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface Probe { grpc?: { port: number }; httpGet?: { port: number | string; path?: string }; tcpSocket?: { port: number | string }; exec?: unknown }
interface PodSpec {
  containers: Container[]; initContainers?: Container[]; terminationGracePeriodSeconds?: number; serviceAccountName?: string;
  securityContext?: { runAsNonRoot?: boolean }; volumes?: { name: string; configMap?: { name: string }; emptyDir?: unknown }[];
}
interface Workload extends KubeObject { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }

const isWorkload = (o: KubeObject): o is Workload => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind);
/** The mesh process a container runs: its first argument, when it is one of the five. */
const processOf = (c: Container): Process | undefined => PROCESSES.find((p) => (c.args ?? c.command ?? []).includes(p));
/** A workload's process name (its container's argument), else its own name (postgres, jaeger…). */
const nameOf = (w: Workload) => w.spec.template.spec.containers.map(processOf).find((p) => p !== undefined) ?? w.metadata.name;
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A real-looking value for each secret key, so the process's own config loader can judge the environment. */
async function secretPlaceholders(): Promise<Record<string, string>> {
  const { privateKey } = await generateKeyPair("EdDSA", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: "k1", alg: "EdDSA", use: "sig" };
  return {
    DATABASE_URL: "postgres://mesh@postgres.example:5432/mesh", MONGO_URL: "mongodb://mongodb.example:27017",
    REDIS_URL: "redis://redis.example:6379", AUTH_SIGNING_KEYS: JSON.stringify([jwk]),
  };
}

/** The keys a zod object schema (refinements included) declares. */
function keysOf(schema: unknown): string[] {
  const s = schema as { shape?: Record<string, unknown>; _def?: { schema?: { shape?: Record<string, unknown> } } };
  return Object.keys(s.shape ?? s._def?.schema?.shape ?? {});
}

const SERVICE_SCHEMAS = {
  auth: { keys: keysOf(AuthEnv), load: loadAuthConfig },
  project: { keys: keysOf(ProjectEnv), load: loadProjectConfig },
  logging: { keys: keysOf(LoggingEnv), load: loadLoggingConfig },
  analytics: { keys: keysOf(AnalyticsEnv), load: loadAnalyticsConfig },
};

for (const overlay of ["deploy/k8s/overlays/dev", "deploy/k8s/overlays/prod"]) {
  describe(`Kubernetes manifests: ${overlay}`, () => {
    let objects: KubeObject[];
    let workloads: Workload[];
    let placeholders: Record<string, string>;
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
    const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
    /** The mesh processes' workloads, by process. */
    const meshWorkloads = () => new Map(workloads.flatMap((w) => {
      const p = w.spec.template.spec.containers.map(processOf).find((x) => x !== undefined);
      return p ? [[p, w] as const] : [];
    }));

    beforeAll(async () => {
      objects = render(overlay);
      workloads = objects.filter(isWorkload);
      placeholders = await secretPlaceholders();
    });

    it("renders, and every object is valid against its kind's Kubernetes schema, with no unknown field", async () => {
      expect(objects.length).toBeGreaterThan(0);
      const problems: string[] = [];
      for (const o of objects) for (const v of await schemaViolations(o)) problems.push(`${idOf(o)}: ${v}`);
      expect(problems).toEqual([]);
    });

    it("runs every process of the mesh from one image, with a ServiceAccount, an HPA and a PDB", () => {
      const mesh = meshWorkloads();
      expect([...mesh.keys()].sort()).toEqual([...PROCESSES].sort());
      const images = new Set([...mesh.values()].flatMap((w) => w.spec.template.spec.containers.filter(processOf).map((c) => c.image)));
      expect(images.size).toBe(1);
      for (const [p, w] of mesh) {
        expect(w.kind, p).toBe("Deployment");
        const sa = w.spec.template.spec.serviceAccountName;
        expect(sa && find("ServiceAccount", sa), `${p}: its ServiceAccount`).toBeTruthy();
        const hpa = byKind("HorizontalPodAutoscaler").find((h) => (h.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef.name === w.metadata.name);
        expect(hpa, `${p}: an HPA targeting it`).toBeDefined();
        const pdb = byKind("PodDisruptionBudget").find((d) => matches((d.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, w.spec.template.metadata.labels));
        expect(pdb, `${p}: a PDB selecting its pods`).toBeDefined();
      }
    });

    it("gives every container readiness and liveness probes, requests and limits, and the restricted security context", () => {
      const problems: string[] = [];
      for (const w of workloads) {
        for (const c of [...w.spec.template.spec.containers, ...(w.spec.template.spec.initContainers ?? [])]) {
          const at = `${idOf(w)} container ${c.name}`;
          const init = (w.spec.template.spec.initContainers ?? []).includes(c);
          if (!init && (!c.readinessProbe || !c.livenessProbe)) problems.push(`${at}: readiness and liveness probes`);
          for (const r of ["cpu", "memory"]) {
            if (!c.resources?.requests?.[r]) problems.push(`${at}: requests.${r}`);
            if (!c.resources?.limits?.[r]) problems.push(`${at}: limits.${r}`);
          }
          const sc = c.securityContext;
          if (sc?.runAsNonRoot !== true && w.spec.template.spec.securityContext?.runAsNonRoot !== true) problems.push(`${at}: runAsNonRoot`);
          if (sc?.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem`);
          if (sc?.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation false`);
          if (!sc?.capabilities?.drop?.includes("ALL")) problems.push(`${at}: capabilities drop ALL`);
        }
      }
      expect(problems).toEqual([]);
    });

    it("probes the services over grpc.health.v1 on their gRPC port, the gateway over HTTP, on ports the containers open", () => {
      for (const [p, w] of meshWorkloads()) {
        const c = w.spec.template.spec.containers.find((x) => processOf(x) === p)!;
        const ports = new Set((c.ports ?? []).flatMap((x) => [x.containerPort, x.name]));
        for (const probe of [c.readinessProbe!, c.livenessProbe!]) {
          if (p === "gateway") {
            expect(probe.httpGet ?? probe.tcpSocket, `${p} probe`).toBeDefined();
          } else {
            expect(probe.grpc?.port, `${p} probe`).toBe(GRPC_PORTS[p]);
          }
          const port = probe.grpc?.port ?? probe.httpGet?.port ?? probe.tcpSocket?.port;
          expect(ports.has(port!), `${p}: probe port ${port} is a container port`).toBe(true);
        }
        expect(c.readinessProbe!.httpGet?.path ?? "grpc", p).not.toBe("/health"); // /health depends on the upstreams
      }
    });

    it("stops every mesh pod gracefully: termination grace longer than the drain plus the span flush", () => {
      for (const [p, w] of meshWorkloads()) {
        expect(w.spec.template.spec.terminationGracePeriodSeconds ?? 30, p).toBeGreaterThan(SHUTDOWN_BUDGET_SECONDS);
      }
    });

    it("sets only variables each process accepts, and each process accepts its environment (production rules included)", () => {
      const problems: string[] = [];
      for (const [p, w] of meshWorkloads()) {
        const c = w.spec.template.spec.containers.find((x) => processOf(x) === p)!;
        const env = environmentOf(c, objects, placeholders);
        const gatewayConfig = p === "gateway" ? mountedFile(w, c, env.GATEWAY_CONFIG, objects) : undefined;
        const accepted = p === "gateway"
          ? new Set([...GATEWAY_ENV_VARIABLES, ...clusterNames(gatewayConfig).map(upstreamEnvName)])
          : new Set(SERVICE_SCHEMAS[p].keys);
        for (const name of Object.keys(env)) {
          if (!accepted.has(name) && !name.startsWith("OTEL_")) problems.push(`${p}: ${name} is not a variable it reads`);
        }
        try {
          if (p === "gateway") {
            expect(gatewayConfig, "the file GATEWAY_CONFIG names is mounted from a ConfigMap").toBeDefined();
            loadGatewayConfig({ text: gatewayConfig!, file: env.GATEWAY_CONFIG, env });
          } else {
            SERVICE_SCHEMAS[p].load(env);
          }
        } catch (err) {
          problems.push(`${p}: ${(err as Error).message}`);
        }
        if (env.NODE_ENV !== "production" && overlay.endsWith("prod")) problems.push(`${p}: NODE_ENV=production in prod`);
        if (env.HOST !== undefined && env.HOST !== "0.0.0.0") problems.push(`${p}: HOST ${env.HOST} is not reachable from other pods`);
        if (p !== "gateway" && env.HOST === undefined) problems.push(`${p}: HOST=0.0.0.0 is needed (the default is loopback)`);
      }
      expect(problems).toEqual([]);
    });

    it("points every Service at pods that exist, on ports they open; the four gRPC services are headless", () => {
      const problems: string[] = [];
      for (const s of byKind("Service")) {
        const spec = s.spec as { selector?: Record<string, string>; clusterIP?: string; ports: { port: number; targetPort?: number | string }[] };
        const targets = workloads.filter((w) => matches(spec.selector, w.spec.template.metadata.labels));
        if (targets.length !== 1) { problems.push(`${idOf(s)} selects ${targets.length} workloads`); continue; }
        const open = new Set(targets[0]!.spec.template.spec.containers.flatMap((c) => (c.ports ?? []).flatMap((x) => [x.containerPort, x.name])));
        for (const port of spec.ports) {
          if (!open.has(port.targetPort ?? port.port)) problems.push(`${idOf(s)}: port ${port.port} → ${port.targetPort ?? port.port} is not a container port`);
        }
      }
      for (const [p, port] of Object.entries(GRPC_PORTS)) {
        const s = find("Service", p);
        expect(s, `Service ${p}`).toBeDefined();
        expect((s!.spec as { clusterIP?: string }).clusterIP, `Service ${p} is headless`).toBe("None");
        expect((s!.spec as { ports: { port: number }[] }).ports.map((x) => x.port)).toContain(port);
      }
      const gw = find("Service", "gateway");
      expect((gw?.spec as { ports: { port: number }[] } | undefined)?.ports.map((x) => x.port).sort()).toEqual([8080, 9901]);
      expect(problems).toEqual([]);
    });

    it("commits no credential: Secrets and literal variables hold no password, key or token", () => {
      const problems: string[] = [];
      for (const s of byKind("Secret")) {
        const data = { ...(s.stringData as Record<string, string> | undefined) };
        for (const [k, v] of Object.entries((s.data as Record<string, string> | undefined) ?? {})) data[k] = Buffer.from(v, "base64").toString("utf8");
        for (const [k, v] of Object.entries(data)) {
          const why = credentialIn(k, v);
          if (why) problems.push(`${idOf(s)} ${k}: ${why}`);
        }
      }
      for (const w of workloads) {
        for (const c of w.spec.template.spec.containers) {
          for (const e of c.env ?? []) {
            const why = e.value === undefined ? undefined : credentialIn(e.name, e.value);
            if (why) problems.push(`${idOf(w)} ${c.name} ${e.name}: ${why}`);
          }
        }
      }
      for (const m of byKind("ConfigMap")) {
        for (const [k, v] of Object.entries((m.data as Record<string, string> | undefined) ?? {})) {
          const why = credentialIn(k, v);
          if (why) problems.push(`${idOf(m)} ${k}: ${why}`);
        }
      }
      expect(problems).toEqual([]);
    });

    it("lets only the gateway be reached from outside the namespace, each service only from its callers, each store only from its owners", () => {
      const policies = byKind("NetworkPolicy") as (KubeObject & { spec: NetworkPolicySpec })[];
      const defaultDeny = policies.some((np) => Object.keys(np.spec.podSelector ?? {}).length === 0
        && Object.keys(np.spec.podSelector?.matchLabels ?? {}).length === 0 && np.spec.policyTypes?.includes("Ingress") && (np.spec.ingress ?? []).length === 0);
      expect(defaultDeny, "a default-deny ingress policy").toBe(true);
      const problems: string[] = [];
      for (const w of workloads) {
        const target = nameOf(w);
        const rules = policies.filter((np) => matches(np.spec.podSelector?.matchLabels ?? {}, w.spec.template.metadata.labels) && np.spec.policyTypes?.includes("Ingress"))
          .flatMap((np) => np.spec.ingress ?? []);
        const callers = new Set<string>();
        let outside = false;
        for (const rule of rules) {
          if ((rule.from ?? []).length === 0) outside = true;
          for (const peer of rule.from ?? []) {
            if (peer.ipBlock || peer.namespaceSelector) outside = true;
            else for (const x of workloads.filter((y) => matches(peer.podSelector?.matchLabels ?? {}, y.spec.template.metadata.labels))) callers.add(nameOf(x));
          }
        }
        if (target === "gateway") {
          if (!outside) problems.push("gateway: not reachable from outside the namespace");
          continue;
        }
        if (outside) problems.push(`${target}: reachable from outside the namespace`);
        if (target === "jaeger") continue; // every mesh pod exports its spans there
        const expected = CALLERS[target] ?? [];
        for (const c of callers) if (!expected.includes(c)) problems.push(`${target}: reachable from ${c}, which does not call it`);
        for (const c of expected) if (!callers.has(c)) problems.push(`${target}: its caller ${c} is not let in`);
      }
      expect(problems).toEqual([]);
    });
  });
}

interface NetworkPolicySpec {
  podSelector?: { matchLabels?: Record<string, string> };
  policyTypes?: string[];
  ingress?: { from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }[] }[];
}

/** A container's environment as the process would see it: literals, ConfigMap and Secret references resolved (absent Secrets by placeholders). */
function environmentOf(c: Container, objects: KubeObject[], placeholders: Record<string, string>): Record<string, string> {
  const data = (kind: string, name: string): Record<string, string> | undefined => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) return undefined;
    const out = { ...(o.data as Record<string, string> | undefined) };
    if (kind === "Secret") for (const [k, v] of Object.entries(out)) out[k] = Buffer.from(v, "base64").toString("utf8");
    return { ...out, ...(o.stringData as Record<string, string> | undefined) };
  };
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, data("ConfigMap", from.configMapRef.name) ?? {});
    if (from.secretRef) Object.assign(env, data("Secret", from.secretRef.name) ?? {});
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef) env[e.name] = data("ConfigMap", e.valueFrom.configMapKeyRef.name)?.[e.valueFrom.configMapKeyRef.key] ?? "";
    else if (e.valueFrom?.secretKeyRef) {
      env[e.name] = data("Secret", e.valueFrom.secretKeyRef.name)?.[e.valueFrom.secretKeyRef.key] ?? placeholders[e.valueFrom.secretKeyRef.key] ?? `placeholder-${e.name}`;
    } else env[e.name] = "from-the-pod";
  }
  return env;
}

/** The content of the file at `path` in container `c`, when it comes from a ConfigMap volume. */
function mountedFile(w: Workload, c: Container, path: string | undefined, objects: KubeObject[]): string | undefined {
  if (!path) return undefined;
  for (const m of c.volumeMounts ?? []) {
    const volume = w.spec.template.spec.volumes?.find((v) => v.name === m.name);
    if (!volume?.configMap) continue;
    const data = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === volume.configMap!.name)?.data as Record<string, string> | undefined;
    if (!data) continue;
    if (m.subPath && m.mountPath === path) return data[m.subPath];
    if (!m.subPath && path.startsWith(`${m.mountPath.replace(/\/$/, "")}/`)) return data[path.slice(m.mountPath.replace(/\/$/, "").length + 1)];
  }
  return undefined;
}

/** The cluster names of a gateway config file (YAML). */
function clusterNames(yaml: string | undefined): string[] {
  const cfg = parse(yaml ?? "") as { clusters?: { name: string }[] } | null;
  return (cfg?.clusters ?? []).map((c) => c.name);
}

/** Why a value looks like a committed credential, if it does. */
function credentialIn(key: string, value: string): string | undefined {
  for (const m of value.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"']+/gi)) {
    try {
      if (new URL(m[0]).password !== "") return "a URL with a password";
    } catch {
      // not a URL after all
    }
  }
  if (/"d"\s*:\s*"/.test(value)) return "a private JWK";
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) return "a private key";
  if (/(PASSWORD|SECRET|TOKEN|SIGNING_KEYS|API_KEY)$/i.test(key) && value.trim() !== "") return "a secret-named key with a value";
  return undefined;
}

describe("Kubernetes manifests: what kustomize cannot share", () => {
  it("the dev overlay's Jaeger config is deploy/jaeger/config.yaml (kustomize loads no file from outside an overlay)", () => {
    expect(readFileSync(join(root, "deploy/k8s/overlays/dev/jaeger/config.yaml"), "utf8")).toBe(readFileSync(join(root, "deploy/jaeger/config.yaml"), "utf8"));
  });
});

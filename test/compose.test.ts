import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { parse } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_ENV_VARIABLES, upstreamEnvName } from "../gateway/config/env-overrides.js";
import { loadGatewayConfig } from "../gateway/config/load.js";
import { AnalyticsEnv, loadAnalyticsConfig } from "../services/analytics/config.js";
import { AuthEnv, loadAuthConfig } from "../services/auth/config.js";
import { LoggingEnv, loadLoggingConfig } from "../services/logging/config.js";
import { ProjectEnv, loadProjectConfig } from "../services/project/config.js";

// deploy/compose.yaml, read as `docker compose` reads it (merge keys, `${VAR:-default}` interpolated with nothing
// set), checked against the deployment contract (deploy/README.md) and each process's own config loader.

const root = join(import.meta.dirname, "..");
const deploy = join(root, "deploy");
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

const PROCESSES = ["auth", "project", "logging", "analytics", "gateway"] as const;
type Process = (typeof PROCESSES)[number];
/** Where each name of the contract listens. */
const CONTRACT_PORTS: Record<string, number> = {
  auth: 50051, project: 50052, logging: 50053, analytics: 50054, gateway: 8080, postgres: 5432, mongodb: 27017, redis: 6379, jaeger: 4318,
};
/** Variables naming a server the process calls (HEALTH_TARGETS only probes, so it is not one). */
const CALL_VARIABLES = /^(DATABASE_URL|MONGO_URL|REDIS_URL|PROJECT_ADDRESS|LOGGING_ADDRESS|UPSTREAM_\w+)$/;
/** SIGTERM: the drain (SHUTDOWN_DRAIN_MS, default 10 s) plus the span flush (≤ 5 s). */
const SHUTDOWN_BUDGET_SECONDS = 15;

interface Service {
  image?: string; build?: { context: string; dockerfile: string }; command?: string[]; entrypoint?: string[]; user?: string;
  environment?: Record<string, string | number>; ports?: string[]; volumes?: string[]; stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>; healthcheck?: { test: string[] };
}

/** Compose interpolation with an empty environment: `$$` → `$`, `${X:-d}` / `${X-d}` → d, `${X}` → "". */
function interpolate<T>(value: T): T {
  if (typeof value === "string") {
    return value.replace(/\$\$|\$\{(\w+)(?::?-([^}]*))?\}/g, (m, _name, def: string | undefined) => (m === "$$" ? "$" : def ?? "")) as T;
  }
  if (Array.isArray(value)) return value.map(interpolate) as T;
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v)])) as T;
  return value;
}

const raw = readFileSync(join(deploy, "compose.yaml"), "utf8");
const compose = interpolate(parse(raw, { merge: true }) as { name: string; services: Record<string, Service>; volumes?: Record<string, unknown> });
const services = compose.services;
const isProcess = (name: string): name is Process => (PROCESSES as readonly string[]).includes(name);
const envOf = (s: Service) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
const seconds = (d: string | undefined) => (d === undefined ? 10 : Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN));

/** The file `auth`'s entrypoint reads AUTH_SIGNING_KEYS from, or undefined. */
const signingKeysFile = (s: Service) => /export AUTH_SIGNING_KEYS="\$\(cat ([^)]+)\)"/.exec(s.entrypoint?.join(" ") ?? "")?.[1];

const SERVICE_SCHEMAS = {
  auth: { keys: Object.keys(AuthEnv.shape), load: loadAuthConfig },
  project: { keys: Object.keys(ProjectEnv.shape), load: loadProjectConfig },
  logging: { keys: Object.keys(LoggingEnv.shape), load: loadLoggingConfig },
  analytics: { keys: Object.keys(AnalyticsEnv.shape), load: loadAnalyticsConfig },
};

let signingKeys: string;
beforeAll(async () => {
  const { privateKey } = await generateKeyPair("EdDSA", { extractable: true });
  signingKeys = JSON.stringify([{ ...(await exportJWK(privateKey)), kid: "k1", alg: "EdDSA" }]);
});

describe("deploy/compose.yaml", () => {
  it("is the compose project `mesh`: the stores, Jaeger, the four services and the gateway under the contract's names", () => {
    expect(compose.name).toBe("mesh");
    expect(Object.keys(services)).toEqual(expect.arrayContaining(["postgres", "mongodb", "redis", "jaeger", ...PROCESSES]));
  });

  it("runs every mesh process from the one image built from deploy/docker/Dockerfile, the command naming the process", () => {
    const meshImage = Object.entries(services).filter(([, s]) => s.image?.startsWith("mesh:"));
    expect(meshImage.map(([n]) => n).sort()).toEqual([...PROCESSES, "auth-keys"].sort());
    for (const [name, s] of meshImage) {
      expect(s.image, name).toBe(`mesh:${version}`);
      expect(existsSync(resolve(deploy, s.build!.context, s.build!.dockerfile)), name).toBe(true);
      expect(resolve(deploy, s.build!.context), name).toBe(root);
    }
    for (const p of PROCESSES) {
      expect(services[p]!.command, p).toEqual([p]);
      // The image's ENTRYPOINT, or a wrapper that ends by exec'ing it.
      if (services[p]!.entrypoint) expect(services[p]!.entrypoint!.join(" "), p).toMatch(/; exec node \/app\/dist\/bin\/mesh\.js "\$@" mesh$/);
    }
  });

  it("sets only variables each process reads, and each process accepts its environment in production", () => {
    const problems: string[] = [];
    const clusters = loadGatewayConfig({ env: {} }).clusters.map((c) => c.name);
    for (const p of PROCESSES) {
      const env = envOf(services[p]!);
      if (signingKeysFile(services[p]!)) env.AUTH_SIGNING_KEYS = signingKeys; // set by the entrypoint, checked below
      const accepted = new Set(p === "gateway" ? [...GATEWAY_ENV_VARIABLES, ...clusters.map(upstreamEnvName)] : SERVICE_SCHEMAS[p].keys);
      for (const name of Object.keys(env)) {
        if (!accepted.has(name) && !name.startsWith("OTEL_")) problems.push(`${p}: ${name} is not a variable it reads`);
      }
      if (env.NODE_ENV !== "production") problems.push(`${p}: NODE_ENV is ${env.NODE_ENV}, not production`);
      if (p !== "gateway" && env.HOST !== "0.0.0.0") problems.push(`${p}: HOST=0.0.0.0 is needed (the default is loopback)`);
      if (env.OTEL_EXPORTER_OTLP_ENDPOINT !== "http://jaeger:4318") problems.push(`${p}: spans do not go to jaeger:4318`);
      try {
        if (p === "gateway") loadGatewayConfig({ env });
        else SERVICE_SCHEMAS[p].load(env);
      } catch (err) {
        problems.push(`${p}: ${(err as Error).message}`);
      }
    }
    // The built-in config points every cluster at 127.0.0.1: in a container each needs its override.
    for (const c of clusters) if (!envOf(services.gateway!)[upstreamEnvName(c)]) problems.push(`gateway: ${upstreamEnvName(c)} is unset`);
    expect(problems).toEqual([]);
  });

  it("points every address at a service of the stack on the contract's port, and waits for what each process calls", () => {
    const problems: string[] = [];
    for (const p of PROCESSES) {
      for (const [name, value] of Object.entries(envOf(services[p]!))) {
        for (const [, host, port] of value.matchAll(/(?:^|[/@=,])([a-z][a-z0-9-]*):(\d+)/g)) {
          if (!services[host!]) problems.push(`${p}: ${name} names ${host}, not a service of the stack`);
          else if (Number(port) !== CONTRACT_PORTS[host!]) problems.push(`${p}: ${name} calls ${host} on ${port}, not ${CONTRACT_PORTS[host!]}`);
          else if (CALL_VARIABLES.test(name) && services[p]!.depends_on?.[host!]?.condition !== "service_healthy") {
            problems.push(`${p}: starts before ${host} (${name}) is healthy`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("depends only on services that exist, and health-gates only on services with a health check", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} → ${dep}`).toBeDefined();
        expect(["service_healthy", "service_completed_successfully"], `${name} → ${dep}`).toContain(condition);
        if (condition === "service_healthy") expect(services[dep]!.healthcheck, `${name} → ${dep}`).toBeDefined();
      }
    }
  });

  it("checks each mesh process's health with the image's own health-check on its contract port", () => {
    const built = (JSON.parse(readFileSync(join(root, "tsconfig.build.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")) as { files: string[] }).files;
    expect(built).toContain("bin/health-check.ts");
    for (const p of PROCESSES) {
      const target = p === "gateway" ? "http://127.0.0.1:9901/ready" : `127.0.0.1:${CONTRACT_PORTS[p]}`;
      expect(services[p]!.healthcheck?.test, p).toEqual(["CMD", "node", "/app/dist/bin/health-check.js", target]);
    }
    expect(services.postgres!.healthcheck?.test.join(" ")).toMatch(/pg_isready/);
    expect(services.mongodb!.healthcheck?.test.join(" ")).toMatch(/mongosh .*ping/);
    expect(services.redis!.healthcheck?.test.join(" ")).toMatch(/redis-cli ping/);
  });

  it("publishes the gateway (8080, admin 9901) and Jaeger (UI 16686, OTLP 4318) on loopback, and no store", () => {
    const published = Object.fromEntries(Object.entries(services).map(([n, s]) => [n, (s.ports ?? []).sort()]));
    expect(published).toMatchObject({
      gateway: ["127.0.0.1:8080:8080", "127.0.0.1:9901:9901"], jaeger: ["127.0.0.1:16686:16686", "127.0.0.1:4318:4318"],
      postgres: [], mongodb: [], redis: [], auth: [], project: [], logging: [], analytics: [],
    });
  });

  it("gives auth the AUTH_SIGNING_KEYS a one-shot container generates once with the service's own code", () => {
    const auth = services.auth!;
    const keys = services["auth-keys"]!;
    const file = signingKeysFile(auth);
    expect(file).toBeDefined();
    const volumeAt = (s: Service, dir: string) => s.volumes?.find((v) => v.split(":")[1] === dir)?.split(":")[0];
    const dir = file!.slice(0, file!.lastIndexOf("/"));
    expect(volumeAt(auth, dir)).toBeDefined();
    expect(volumeAt(keys, dir)).toBe(volumeAt(auth, dir));
    expect(compose.volumes).toHaveProperty(volumeAt(auth, dir)!);
    const script = keys.command!.join("\n");
    expect(script).toContain(`key=${file}`);
    expect(script).toMatch(/if \[ ! -s "\$key" \]; then\n\s*node \/app\/dist\/bin\/auth-signing-keys\.js > "\$key\.new"/);
    expect(auth.depends_on?.["auth-keys"]?.condition).toBe("service_completed_successfully");
  });

  it("commits no credential: the one password is a marked development default the user can override", () => {
    expect(new Set(raw.match(/\$\{POSTGRES_PASSWORD[^}]*\}/g))).toEqual(new Set(["${POSTGRES_PASSWORD:-mesh-dev-only}"]));
    for (const [name, s] of Object.entries(services)) {
      const env = envOf(s);
      for (const [k, v] of Object.entries(env)) {
        if (/SIGNING_KEYS|SECRET|TOKEN/.test(k)) expect.fail(`${name}: ${k} is set literally`);
        if (/PASSWORD/.test(k)) expect(v, `${name}: ${k}`).toBe("mesh-dev-only");
        const password = /^\w+:\/\/[^:/@]+:([^@]+)@/.exec(v)?.[1];
        if (password !== undefined) expect(password, `${name}: ${k}`).toBe("mesh-dev-only");
      }
    }
  });

  it("stops each mesh process only after its drain and span flush", () => {
    for (const p of PROCESSES) expect(seconds(services[p]!.stop_grace_period), p).toBeGreaterThan(SHUTDOWN_BUDGET_SECONDS);
  });

  it("runs Jaeger 2.13 with deploy/jaeger/config.yaml on every interface, and the stores the contract names with their data on volumes", () => {
    const jaeger = services.jaeger!;
    expect(jaeger.image).toBe("jaegertracing/jaeger:2.13.0");
    const [source, target] = jaeger.volumes![0]!.split(":");
    expect(resolve(deploy, source!)).toBe(join(deploy, "jaeger", "config.yaml"));
    expect(jaeger.command).toEqual(["--config", target]);
    expect(envOf(jaeger).JAEGER_LISTEN_HOST).toBe("0.0.0.0");
    expect([services.postgres!.image, services.mongodb!.image, services.redis!.image]).toEqual(["postgres:16", "mongo:7", "redis:7"]);
    for (const store of ["postgres", "mongodb"]) expect(Object.keys(compose.volumes ?? {})).toContain(services[store]!.volumes![0]!.split(":")[0]);
  });
});

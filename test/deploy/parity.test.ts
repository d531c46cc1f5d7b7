import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { render, root, type KubeObject } from "./kubernetes.js";

// The laptop stack (deploy/compose.yaml) and the cluster (deploy/k8s, prod overlay: the production settings) run
// the same processes the same way: one image, the same ports, and every variable compose sets is one the
// manifests set too, to the same value unless it names a place (addresses, URLs, the OTLP endpoint) that differs
// between a laptop and a cluster.

const PROCESSES = ["auth", "project", "logging", "analytics", "gateway"] as const;
/** Variables whose values name where things are, which differ between compose and a cluster. */
const PLACE = /(_URL|_ADDRESS|_ENDPOINT|^UPSTREAM_.*|^HEALTH_TARGETS)$/;

interface ComposeService { image?: string; command?: string[]; environment?: Record<string, string>; ports?: string[]; healthcheck?: { test: string[] } }
interface Container { image: string; args?: string[]; ports?: { containerPort: number }[]; env?: { name: string; value?: string }[]; envFrom?: { configMapRef?: { name: string } }[] }

const compose = parse(readFileSync(join(root, "deploy/compose.yaml"), "utf8"), { merge: true }) as { services: Record<string, ComposeService> };
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

function containerOf(objects: KubeObject[], process: string): Container {
  const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name === process) as { spec: { template: { spec: { containers: Container[] } } } } | undefined;
  const c = d?.spec.template.spec.containers.find((x) => x.args?.includes(process));
  if (!c) throw new Error(`no Deployment runs ${process}`);
  return c;
}

/** Literal and ConfigMap-provided variables of a container (Secret references count as set, value unknown). */
function variables(objects: KubeObject[], c: Container): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const f of c.envFrom ?? []) {
    const data = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === f.configMapRef?.name)?.data as Record<string, string> | undefined;
    for (const [k, v] of Object.entries(data ?? {})) out.set(k, v);
  }
  for (const e of c.env ?? []) out.set(e.name, e.value);
  return out;
}

describe("deploy/compose.yaml and the Kubernetes manifests agree", () => {
  const dev = render("deploy/k8s/overlays/dev");
  const prod = render("deploy/k8s/overlays/prod");

  it("name the same image for every process: mesh:<package.json version>", () => {
    for (const p of PROCESSES) {
      expect(compose.services[p]?.image, `compose ${p}`).toBe(`mesh:${version}`);
      expect(containerOf(dev, p).image, `dev ${p}`).toBe(`mesh:${version}`);
      expect(containerOf(prod, p).image.split("/").pop(), `prod ${p} (its registry aside)`).toBe(`mesh:${version}`);
    }
  });

  it("listen on the same ports", () => {
    for (const p of PROCESSES.filter((x) => x !== "gateway")) {
      const probed = Number(/:(\d+)$/.exec(compose.services[p]!.healthcheck!.test.at(-1)!)?.[1]);
      expect(containerOf(prod, p).ports?.map((x) => x.containerPort), p).toEqual([probed]);
    }
    const published = (compose.services.gateway!.ports ?? []).map((s) => Number(s.split(":").at(-1))).sort();
    expect(containerOf(prod, "gateway").ports?.map((x) => x.containerPort).sort()).toEqual(published);
  });

  it("set the same variables: every one compose sets, the production manifests set, to the same value unless it names a place", () => {
    const problems: string[] = [];
    for (const p of PROCESSES) {
      const k8s = variables(prod, containerOf(prod, p));
      for (const [name, value] of Object.entries(compose.services[p]!.environment ?? {})) {
        if (!k8s.has(name)) problems.push(`${p}: compose sets ${name}, the manifests do not`);
        else if (!PLACE.test(name) && k8s.get(name) !== undefined && k8s.get(name) !== String(value)) {
          problems.push(`${p}: ${name} is ${JSON.stringify(value)} in compose, ${JSON.stringify(k8s.get(name))} in the manifests`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

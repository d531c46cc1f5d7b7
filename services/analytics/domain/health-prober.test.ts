import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createGrpcServer, type GrpcServer } from "../../../lib/grpc/server.js";
import { createLogger } from "../../../lib/logger.js";
import { createEmbeddedDocumentDb } from "../../../lib/stores/embedded-documents.js";
import { createHealthStore, type HealthSample, type HealthStore } from "../storage/health.js";
import { createHealthProber } from "./health-prober.js";
import { freePort } from "../../../test/support/processes.js";

let t = new Date("2026-01-01T00:00:00Z");
const now = () => t;
const logger = createLogger({ service: "analytics", level: "silent" });
const hour = (d: Date, h: number) => new Date(d.getTime() + h * 3_600_000);

let server: GrpcServer;
let serving: string;
let closed: string;
/** Accepts TCP connections and never answers: a hung service. */
let silent: Server;
let silentAddress: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = createGrpcServer({ services: [] });
  serving = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  closed = `127.0.0.1:${await freePort()}`;
  silent = createServer((socket) => { sockets.push(socket); });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentAddress = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await server.shutdown(1_000);
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

let store: HealthStore;
beforeEach(async () => {
  store = createHealthStore(createEmbeddedDocumentDb());
  await store.prepare();
  server.health.setStatus("", "SERVING");
});

const byService = (samples: HealthSample[]) => Object.fromEntries(samples.map((s) => [s.service, s.ok]));

describe("health prober", () => {
  it("records ok for a serving server and not ok for a closed port", async () => {
    const prober = createHealthProber({ samples: store, targets: { auth: serving, project: closed }, now, logger });
    try {
      const samples = await prober.runOnce();
      expect(byService(samples)).toEqual({ auth: true, project: false });
      expect(samples.every((s) => s.at === t)).toBe(true);
      expect(await store.uptime("auth", t, hour(t, 1))).toBe(100);
      expect(await store.uptime("project", t, hour(t, 1))).toBe(0);
      expect(await store.uptime(undefined, t, hour(t, 1))).toBe(50);
    } finally {
      await prober.stop();
    }
  });

  it("records not ok while the server reports NOT_SERVING, and ok again after", async () => {
    const prober = createHealthProber({ samples: store, targets: { auth: serving }, now, logger });
    try {
      server.health.setStatus("", "NOT_SERVING");
      expect(byService(await prober.runOnce())).toEqual({ auth: false });
      server.health.setStatus("", "SERVING");
      expect(byService(await prober.runOnce())).toEqual({ auth: true });
      expect(await store.uptime("auth", t, hour(t, 1))).toBe(50);
    } finally {
      await prober.stop();
    }
  });

  it("records not ok when a service does not answer within the deadline", async () => {
    const prober = createHealthProber({ samples: store, targets: { logging: silentAddress }, now, logger, timeoutMs: 300 });
    try {
      const started = performance.now();
      expect(byService(await prober.runOnce())).toEqual({ logging: false });
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await prober.stop();
    }
  });

  it("probes at once when started, then every interval until stopped", async () => {
    const recorded: HealthSample[] = [];
    const samples = { record: (sample: HealthSample) => { recorded.push(sample); return store.record(sample); } };
    const prober = createHealthProber({ samples, targets: { auth: serving }, now, logger, intervalMs: 50 });
    prober.start();
    await expect.poll(() => recorded.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);
    await prober.stop();
    const after = recorded.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(recorded.length).toBe(after);
    expect(recorded.every((r) => r.ok)).toBe(true);
  });
});

describe("health store", () => {
  it("answers undefined uptime without samples and forgets old samples", async () => {
    expect(await store.uptime(undefined, t, hour(t, 1))).toBeUndefined();
    await store.record({ service: "auth", at: t, ok: false });
    await store.record({ service: "auth", at: hour(t, 2), ok: true });
    expect(await store.uptime("auth", t, hour(t, 1))).toBe(0);
    expect(await store.uptime("project", t, hour(t, 3))).toBeUndefined();
    expect(await store.deleteOlderThan(hour(t, 1))).toBe(1);
    expect(await store.uptime("auth", t, hour(t, 3))).toBe(100);
  });
});

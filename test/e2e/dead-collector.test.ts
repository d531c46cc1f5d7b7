import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMesh, type Mesh } from "../support/mesh.js";

// A tracing backend that is down must never slow or fail requests: the mesh runs exporting to a collector that
// accepts connections and never answers, with a small export queue, and keeps answering while it counts what
// it loses.
describe("the mesh with a collector that never answers", () => {
  let blackhole: Server;
  const sockets = new Set<Socket>();
  let mesh: Mesh;

  beforeAll(async () => {
    blackhole = createServer((s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
    await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    const port = (blackhole.address() as { port: number }).port;
    mesh = await startMesh({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_MAX_QUEUE_SIZE: "8",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4", OTEL_BSP_SCHEDULE_DELAY: "50", OTEL_BSP_EXPORT_TIMEOUT: "1000",
      },
    });
  }, 120_000);
  afterAll(async () => {
    await mesh?.stop();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => blackhole?.close(resolve));
  });

  it("answers every request (the gateway and every service: /health) while spans pile up, and /stats counts the spans dropped or failed", async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => fetch(`${mesh.gatewayUrl}/health`)));
      for (const r of replies) {
        statuses.push(r.status);
        await r.body?.cancel();
      }
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const lost = async () => {
      const text = await (await fetch(`http://127.0.0.1:${mesh.ports.admin}/stats`)).text();
      const value = (outcome: string) => Number(new RegExp(`^mesh_gateway_trace_spans_total\\{outcome="${outcome}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
      return { dropped: value("dropped"), failed: value("failed"), exported: value("exported") };
    };
    await expect.poll(async () => { const l = await lost(); return l.dropped + l.failed; }, { timeout: 10_000 }).toBeGreaterThan(0);
    expect((await lost()).exported).toBe(0);
  });
});

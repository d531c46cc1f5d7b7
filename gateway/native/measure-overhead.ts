// Hand-run measurement (not a test) of what the native proxy adds to a unary call:
//   npx tsx gateway/native/measure-overhead.ts
// The gateway runs in a child process so its CPU is counted alone; the upstream
// (grpc-js, the logging double) and the clients run in this process.
// NATIVE_PROFILE_DIR=/tmp/prof writes the gateway's CPU profile there (summarize with bench/profile-top.ts).
import { fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { createGrpcTransport } from "../../lib/grpc/transport.js";
import { createCluster } from "../clusters/cluster.js";
import { createListener } from "../server/listener.js";
import { createNativeHandler } from "./proxy.js";
import { startUpstream, StreamTestService } from "./test-support.js";

const SEQUENTIAL = 2_000;
const CONCURRENT = 8_000;
const IN_FLIGHT = 32;

type CpuReply = { user: number; system: number };

async function runGateway(upstreamPort: number): Promise<void> {
  const cluster = createCluster({ name: "logging", endpoints: [`127.0.0.1:${upstreamPort}`] });
  const native = createNativeHandler({
    services: [LoggingService, StreamTestService],
    clusterFor: () => cluster,
    admit: async () => new Headers({ "x-user-id": "u1", "x-user-roles": "user" }),
    logger: pino({ level: "silent" }),
  });
  const listener = createListener((req, res) => {
    if (!native.handle(req, res)) res.end();
  });
  const port = await listener.listen(0, "127.0.0.1");
  process.on("message", () => process.send?.(process.cpuUsage()));
  process.on("SIGINT", () => process.exit(0)); // exits normally, so --cpu-prof writes its profile
  process.send?.({ port });
}

async function measure(name: string, transport: Transport, gatewayCpu: () => Promise<CpuReply | undefined>) {
  const client = createClient(LoggingService, transport);
  const call = () => client.ingestLog({ log: { requestId: "r1", path: "/api/v1/projects", statusCode: 200 } }, { headers: { authorization: "Bearer x" } });
  for (let i = 0; i < 500; i++) await call();
  const latencies: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const cpu0 = await gatewayCpu();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next++ < CONCURRENT) await call();
  }));
  const seconds = (performance.now() - t0) / 1_000;
  const cpu1 = await gatewayCpu();
  const cpuPerCall = cpu0 && cpu1 ? `${((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / CONCURRENT).toFixed(0)} µs` : "-";
  const q = (p: number) => `${(latencies[Math.floor(p * latencies.length)]! * 1_000).toFixed(0)} µs`;
  console.log(`${name.padEnd(28)} p50 ${q(0.5).padStart(7)}  p99 ${q(0.99).padStart(8)}  ${(CONCURRENT / seconds).toFixed(0).padStart(5)} calls/s at ${IN_FLIGHT} in flight  gateway CPU/call ${cpuPerCall}`);
}

async function main(): Promise<void> {
  if (process.argv[2] === "gateway") return runGateway(Number(process.argv[3]));
  const upstream = await startUpstream();
  const child = fork(fileURLToPath(import.meta.url), ["gateway", String(upstream.port)], {
    execArgv: ["--import", "tsx", ...(process.env.NATIVE_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.NATIVE_PROFILE_DIR}`] : [])],
  });
  const [{ port }] = (await once(child, "message")) as [{ port: number }];
  const gatewayCpu = async () => {
    child.send("cpu");
    return ((await once(child, "message")) as [CpuReply])[0];
  };
  const base = `http://127.0.0.1:${port}`;
  const direct = createGrpcTransport({ address: `127.0.0.1:${upstream.port}` });
  const viaGrpc = createGrpcTransport({ address: `127.0.0.1:${port}` });
  await measure("direct gRPC (no gateway)", direct, async () => undefined);
  await measure("gRPC via gateway", viaGrpc, gatewayCpu);
  await measure("Connect binary h2c via gw", createConnectTransport({ baseUrl: base, httpVersion: "2", useBinaryFormat: true }), gatewayCpu);
  await measure("Connect JSON HTTP/1.1 via gw", createConnectTransport({ baseUrl: base, httpVersion: "1.1" }), gatewayCpu);
  await measure("gRPC-Web HTTP/1.1 via gw", createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" }), gatewayCpu);
  direct.close();
  viaGrpc.close();
  child.kill("SIGINT");
  await upstream.server.shutdown(100);
}

await main();

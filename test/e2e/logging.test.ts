import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type CallOptions, type Client } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import {
  IngestErrorSchema, LogRecordSchema,
  type IngestLogStreamRequestSchema, type LoggingService, type LogPosition, type LogRecord, type TailLogsRequestSchema, type TailLogsResponse,
} from "../../gen/mesh/logging/v1/logging_pb.js";
import { fieldViolationsOf } from "../../lib/errors.js";
import { loadLoggingConfig } from "../../services/logging/config.js";
import { healthCheck, reflectFiles, reflectServices } from "../support/grpc-generic.js";
import { describeWithServer } from "../support/integration.js";
import {
  as, createFakeDirectory, freePort, haveFerretdb, makeLogRecord, startFerretdb, startLoggingHarness, startLoggingInstance, stopProcess,
  type LoggingHarness, type LoggingInstance,
} from "../support/logging-harness.js";
import { recordStream, type StreamRecorder } from "../support/project-harness.js";
import { rejectionOf, timedUnavailable, untilSucceeds } from "../support/rejection.js";

type LoggingClient = Client<typeof LoggingService>;
type TailFilter = MessageInitShape<typeof TailLogsRequestSchema>;
type StreamMessage = MessageInitShape<typeof IngestLogStreamRequestSchema>;

/** A request id unique to this run. */
const rid = (label: string) => `${label}-${randomUUID()}`;
const idsOf = (logs: readonly LogRecord[]) => logs.map((l) => l.requestId);

/** Aborts the stream when the test ends, passed or failed. */
function track<T>(rec: StreamRecorder<T>): StreamRecorder<T> {
  onTestFinished(() => rec.close());
  return rec;
}

/** How a stream ended, for readable assertions: "completed" or "failed with <code>". */
function outcome(err: unknown): string {
  return err === undefined ? "completed" : `failed with ${codeToString(ConnectError.from(err).code)}`;
}

async function* messages(...batches: LogRecord[][]): AsyncIterable<StreamMessage> {
  for (const logs of batches) yield { logs };
}

function loggingSuite(store: string, mongoUrl: () => string | undefined) {
  describe(`logging service over gRPC (${store})`, () => {
    let h: LoggingHarness;
    beforeAll(async () => {
      h = await startLoggingHarness({ mongoUrl: mongoUrl() });
    });
    afterAll(() => h?.stop());

    let replicaOnce: Promise<LoggingInstance> | undefined;
    /** A second instance on the same database, started once for the suite (stopped with the harness). */
    const startReplica = () => (replicaOnce ??= h.startReplica());

    /** A new user owning a new project. */
    const tenant = () => {
      const user = `user-${randomUUID()}`;
      const project = `project-${randomUUID()}`;
      h.directory.grant(user, project);
      return { user, project };
    };
    const ingest = async (log: LogRecord, opts: CallOptions = as.admin(), client = h.client) => {
      await client.ingestLog({ log }, opts);
      return log;
    };
    /** Timestamps `ms` after one fixed instant a minute ago. */
    const stamper = () => {
      const base = h.now().getTime() - 60_000;
      return (ms: number) => timestampFromDate(new Date(base + ms));
    };

    /**
     * Opens TailLogs on `client` and makes sure it is live: ingests probe
     * records matching `filter` through `via` until one arrives (bounded).
     * Probes have the path "/probe"; `probe` builds one.
     */
    async function liveTail(filter: TailFilter, opts: { client?: LoggingClient; via?: LoggingClient; call?: CallOptions; probe: () => LogRecord }) {
      const client = opts.client ?? h.client;
      const rec = track(recordStream<TailLogsResponse>((signal) => client.tailLogs(filter, { ...(opts.call ?? as.admin()), signal })));
      const deadline = performance.now() + 5_000;
      while (performance.now() < deadline && !rec.done) {
        const probe = opts.probe();
        await (opts.via ?? h.client).ingestLog({ log: probe }, as.admin());
        const seen = await rec.waitFor((m) => m.log?.requestId === probe.requestId, { timeoutMs: 300, what: "probe" }).then(() => true, () => false);
        if (seen) return rec;
      }
      if (rec.done) throw new Error(`the tail ended before it saw a probe: ${String(await rec.ended())}`);
      throw new Error("the tail saw no probe within 5 s");
    }
    const tailed = (rec: StreamRecorder<TailLogsResponse>) => rec.received.map((r) => r.message.log!).filter((l) => l.path !== "/probe");

    describe("generic gRPC", () => {
      it("reports SERVING through grpc.health.v1 for the server and the logging service", async () => {
        expect(await healthCheck(h.address, "")).toBe("SERVING");
        expect(await healthCheck(h.address, "mesh.logging.v1.LoggingService")).toBe("SERVING");
      });

      it("lists and describes mesh.logging.v1.LoggingService through grpc.reflection.v1", async () => {
        expect(await reflectServices(h.address)).toEqual(expect.arrayContaining(["mesh.logging.v1.LoggingService", "grpc.health.v1.Health"]));
        expect(await reflectFiles(h.address, { file_containing_symbol: "mesh.logging.v1.LoggingService" }))
          .toContain("mesh/logging/v1/logging.proto");
      });
    });

    describe("IngestLog", () => {
      it("stores a record that GetLog answers with every field and the time it was ingested", async () => {
        const sent = makeLogRecord({ timestamp: new Date(h.now().getTime() - 1_000), userId: "u", projectId: "p", apiKeyId: "k", errorCode: "X" });
        const before = h.now().getTime();
        expect(await h.client.ingestLog({ log: sent }, as.admin())).toMatchObject({ message: "Log ingested" });
        const after = h.now().getTime();
        const { log } = await h.client.getLog({ requestId: sent.requestId }, as.admin());
        expect(log).toEqual(create(LogRecordSchema, { ...sent, ingestedAt: log!.ingestedAt }));
        expect(timestampMs(log!.ingestedAt!)).toBeGreaterThanOrEqual(before);
        expect(timestampMs(log!.ingestedAt!)).toBeLessThanOrEqual(after);
      });

      it("refuses an invalid record with INVALID_ARGUMENT naming each bad field", async () => {
        const err = await rejectionOf(h.client.ingestLog({ log: makeLogRecord({ method: "G3T", statusCode: 42 }) }, as.admin()));
        expect(err.code).toBe(Code.InvalidArgument);
        expect(fieldViolationsOf(err).map((v) => v.field).sort()).toEqual(["log.method", "log.status_code"]);
      });

      it("refuses a call without caller identity with UNAUTHENTICATED", async () => {
        expect((await rejectionOf(h.client.ingestLog({ log: makeLogRecord() }))).code).toBe(Code.Unauthenticated);
      });

      it("refuses with NOT_FOUND a user's record for a project they do not own", async () => {
        const alice = tenant();
        const bob = tenant();
        const log = makeLogRecord({ projectId: bob.project });
        expect((await rejectionOf(h.client.ingestLog({ log }, as.user(alice.user)))).code).toBe(Code.NotFound);
        expect((await rejectionOf(h.client.getLog({ requestId: log.requestId }, as.admin()))).code).toBe(Code.NotFound);
      });

      it("stamps an API key's record with the key's project", async () => {
        const { project } = tenant();
        const log = await ingest(makeLogRecord({ projectId: "another" }), as.apiKey(project));
        expect((await h.client.getLog({ requestId: log.requestId }, as.admin())).log?.projectId).toBe(project);
      });
    });

    describe("IngestLogBatch", () => {
      it("stores every record of a batch and answers how many", async () => {
        const { user, project } = tenant();
        const logs = [makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project })];
        expect(await h.client.ingestLogBatch({ logs }, as.user(user))).toMatchObject({ ingested: 2, errors: [] });
        expect((await h.client.queryLogs({ projectId: project }, as.user(user))).total).toBe(2);
      });

      it("stores nothing when a record is invalid and answers each invalid record's index, request id and message", async () => {
        const { project } = tenant();
        const logs = [
          makeLogRecord({ projectId: project }),
          makeLogRecord({ projectId: project, requestId: "bad one" }),
          makeLogRecord({ projectId: project, path: "relative" }),
        ];
        const res = await h.client.ingestLogBatch({ logs }, as.admin());
        expect(res.ingested).toBe(0);
        expect(res.errors).toEqual([
          create(IngestErrorSchema, { index: 1, requestId: "bad one", message: "request_id: is required: 1 to 128 letters, digits or . _ : -" }),
          create(IngestErrorSchema, { index: 2, requestId: logs[2]!.requestId, message: "path: must start with / and be at most 2048 characters" }),
        ]);
        expect((await h.client.queryLogs({ projectId: project }, as.admin())).total).toBe(0);
      });

      it("counts a retried batch as before and stores nothing twice", async () => {
        const { project } = tenant();
        const logs = [makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project })];
        expect((await h.client.ingestLogBatch({ logs }, as.admin())).ingested).toBe(3);
        const stored = await h.client.queryLogs({ projectId: project }, as.admin());
        expect((await h.client.ingestLogBatch({ logs }, as.admin())).ingested).toBe(3);
        expect(await h.client.queryLogs({ projectId: project }, as.admin())).toEqual(stored);
      });

      it("refuses more than 1000 records with INVALID_ARGUMENT", async () => {
        const { project } = tenant();
        const logs = Array.from({ length: 1001 }, () => makeLogRecord({ projectId: project }));
        const err = await rejectionOf(h.client.ingestLogBatch({ logs }, as.admin()));
        expect({ code: err.code, fields: fieldViolationsOf(err).map((v) => v.field) }).toEqual({ code: Code.InvalidArgument, fields: ["logs"] });
        expect((await h.client.queryLogs({ projectId: project }, as.admin())).total).toBe(0);
      });
    });

    describe("IngestLogStream", () => {
      it("stores each message's records and answers how many were stored and how many were duplicates", async () => {
        const { project } = tenant();
        const earlier = await ingest(makeLogRecord({ projectId: project }));
        const fresh = [makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project })];
        const res = await h.client.ingestLogStream(messages([fresh[0]!, earlier], [fresh[1]!]), { timeoutMs: 10_000 });
        expect(res).toMatchObject({ ingested: 2, duplicates: 1 });
        expect(idsOf((await h.client.queryLogs({ projectId: project }, as.admin())).logs).sort())
          .toEqual([earlier.requestId, ...idsOf(fresh)].sort());
      });

      it("counts every record of a resent stream as a duplicate", async () => {
        const { project } = tenant();
        const logs = [makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project })];
        await h.client.ingestLogStream(messages(logs), { timeoutMs: 10_000 });
        expect(await h.client.ingestLogStream(messages(logs), { timeoutMs: 10_000 })).toMatchObject({ ingested: 0, duplicates: 2 });
      });

      it("fails with INVALID_ARGUMENT at an invalid record, after storing the messages before it and none after", async () => {
        const { project } = tenant();
        const first = [makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project })];
        const second = [makeLogRecord({ projectId: project }), makeLogRecord({ projectId: project, statusCode: 1_000 })];
        const third = [makeLogRecord({ projectId: project })];
        const err = await rejectionOf(h.client.ingestLogStream(messages(first, second, third), { timeoutMs: 10_000 }));
        expect({ code: err.code, fields: fieldViolationsOf(err).map((v) => v.field) }).toEqual({ code: Code.InvalidArgument, fields: ["logs[1]"] });
        expect(idsOf((await h.client.queryLogs({ projectId: project }, as.admin())).logs).sort()).toEqual(idsOf(first).sort());
      });
    });

    describe("QueryLogs", () => {
      it("pages the caller's records newest first and answers the total, page and limit", async () => {
        const stamped = stamper();
        const { user, project } = tenant();
        const logs = Array.from({ length: 5 }, () => makeLogRecord({ projectId: project }));
        logs.forEach((l, i) => { l.timestamp = stamped(i); });
        await h.client.ingestLogBatch({ logs }, as.user(user));
        const res = await h.client.queryLogs({ page: 2, limit: 2 }, as.user(user));
        expect({ ids: idsOf(res.logs), total: res.total, page: res.page, limit: res.limit })
          .toEqual({ ids: [logs[2]!.requestId, logs[1]!.requestId], total: 5, page: 2, limit: 2 });
      });

      it("answers a user only records of their projects and their own requests", async () => {
        const alice = tenant();
        const bob = tenant();
        const hers = await ingest(makeLogRecord({ projectId: alice.project, timestamp: new Date(h.now().getTime() - 2_000) }));
        const herCall = await ingest(makeLogRecord({ projectId: "", userId: alice.user, timestamp: new Date(h.now().getTime() - 1_000) }));
        await ingest(makeLogRecord({ projectId: bob.project, userId: alice.user }));
        await ingest(makeLogRecord({ projectId: bob.project }));
        expect(idsOf((await h.client.queryLogs({}, as.user(alice.user))).logs)).toEqual([herCall.requestId, hers.requestId]);
      });

      it("applies every filter sent", async () => {
        const stamped = stamper();
        const { project } = tenant();
        const base = { projectId: project, userId: "u1", apiKeyId: "k1", statusCode: 404, method: "DELETE", path: "/api/v1/x(1)/y" };
        const hit = makeLogRecord(base);
        hit.timestamp = stamped(10);
        const misses = [
          makeLogRecord({ ...base, userId: "u2" }), makeLogRecord({ ...base, apiKeyId: "k2" }), makeLogRecord({ ...base, statusCode: 200 }),
          makeLogRecord({ ...base, method: "GET" }), makeLogRecord({ ...base, path: "/api/v1/x1/y" }),
        ];
        misses.forEach((m) => { m.timestamp = stamped(10); });
        const early = makeLogRecord(base);
        early.timestamp = stamped(0);
        const late = makeLogRecord(base);
        late.timestamp = stamped(20);
        await h.client.ingestLogBatch({ logs: [hit, ...misses, early, late] }, as.admin());
        const res = await h.client.queryLogs({
          projectId: project, userId: "u1", apiKeyId: "k1", statusCode: 404, method: "delete", pathPrefix: "/api/v1/x(1)",
          from: stamped(5), to: stamped(20),
        }, as.admin());
        expect({ ids: idsOf(res.logs), total: res.total }).toEqual({ ids: [hit.requestId], total: 1 });
      });

      it("refuses a page size above 100 with INVALID_ARGUMENT", async () => {
        const err = await rejectionOf(h.client.queryLogs({ limit: 101 }, as.admin()));
        expect({ code: err.code, fields: fieldViolationsOf(err).map((v) => v.field) }).toEqual({ code: Code.InvalidArgument, fields: ["limit"] });
      });
    });

    describe("ListErrorLogs", () => {
      it("lists the caller's records with status 500 or more by default, newest first, with the total", async () => {
        const stamped = stamper();
        const { user, project } = tenant();
        const logs = [200, 404, 500, 503].map((statusCode) => makeLogRecord({ projectId: project, statusCode }));
        logs.forEach((l, i) => { l.timestamp = stamped(i); });
        await h.client.ingestLogBatch({ logs }, as.user(user));
        const res = await h.client.listErrorLogs({}, as.user(user));
        expect({ ids: idsOf(res.logs), total: res.total, page: res.page, limit: res.limit })
          .toEqual({ ids: [logs[3]!.requestId, logs[2]!.requestId], total: 2, page: 1, limit: 20 });
      });

      it("lists records at or above the requested lowest status", async () => {
        const stamped = stamper();
        const { project } = tenant();
        const logs = [200, 404, 500].map((statusCode) => makeLogRecord({ projectId: project, statusCode }));
        logs.forEach((l, i) => { l.timestamp = stamped(i); });
        await h.client.ingestLogBatch({ logs }, as.admin());
        const res = await h.client.listErrorLogs({ minStatusCode: 404, projectId: project }, as.admin());
        expect(idsOf(res.logs)).toEqual([logs[2]!.requestId, logs[1]!.requestId]);
      });
    });

    describe("GetLog", () => {
      it("answers a record of the caller's project", async () => {
        const { user, project } = tenant();
        const log = await ingest(makeLogRecord({ projectId: project }));
        expect((await h.client.getLog({ requestId: log.requestId }, as.user(user))).log?.requestId).toBe(log.requestId);
      });

      it("answers NOT_FOUND for another tenant's record, to a user and to an API key", async () => {
        const alice = tenant();
        const bob = tenant();
        const log = await ingest(makeLogRecord({ projectId: bob.project }));
        expect((await rejectionOf(h.client.getLog({ requestId: log.requestId }, as.user(alice.user)))).code).toBe(Code.NotFound);
        expect((await rejectionOf(h.client.getLog({ requestId: log.requestId }, as.apiKey(alice.project)))).code).toBe(Code.NotFound);
      });

      it("answers NOT_FOUND for an unknown request id", async () => {
        expect((await rejectionOf(h.client.getLog({ requestId: rid("never") }, as.admin()))).code).toBe(Code.NotFound);
      });
    });

    describe("ReadLogs", () => {
      const position = (p: LogPosition | undefined) => (p ? { at: timestampMs(p.ingestedAt!), requestId: p.requestId } : undefined);

      /** Reads from `after` until caught up (bounded); answers every record read and the final position. */
      async function readAll(after?: LogPosition) {
        const read: LogRecord[] = [];
        for (let i = 0; i < 200; i++) {
          const res = await h.client.readLogs({ after, limit: 3 });
          read.push(...res.logs);
          if (res.logs.length > 0) {
            const last = res.logs[res.logs.length - 1]!;
            expect(position(res.next)).toEqual({ at: timestampMs(last.ingestedAt!), requestId: last.requestId });
          } else {
            expect(position(res.next)).toEqual(position(after));
          }
          after = res.next;
          if (res.logs.length < 3) return { read, after };
        }
        throw new Error("ReadLogs did not catch up within 200 reads");
      }

      it("does not answer records stored less than 2 s ago", async () => {
        const { after } = await readAll();
        const fresh = [makeLogRecord(), makeLogRecord()];
        await h.client.ingestLogBatch({ logs: fresh }, as.admin());
        h.advance(1_000);
        const answered = idsOf((await readAll(after)).read);
        expect(answered.filter((id) => fresh.some((l) => l.requestId === id))).toEqual([]);
      });

      it("reads every record once, in ingest order, continuing from each answer's next", async () => {
        const first = [makeLogRecord(), makeLogRecord(), makeLogRecord()];
        const second = [makeLogRecord(), makeLogRecord()];
        await h.client.ingestLogBatch({ logs: first }, as.admin());
        h.advance(5);
        await h.client.ingestLogBatch({ logs: second }, as.admin());
        h.advance(2_100);
        const { read, after } = await readAll();
        const keys = read.map((l) => `${String(timestampMs(l.ingestedAt!)).padStart(16, "0")} ${l.requestId}`);
        expect(keys).toEqual([...keys].sort());
        expect(new Set(keys).size).toBe(keys.length);
        const mine = idsOf(read).filter((id) => [...first, ...second].some((l) => l.requestId === id));
        expect(mine).toEqual([...idsOf(first).sort(), ...idsOf(second).sort()]);

        const next = makeLogRecord();
        await ingest(next);
        h.advance(2_100);
        expect(idsOf((await readAll(after)).read)).toEqual([next.requestId]);
      });

      it("refuses a limit above 5000 with INVALID_ARGUMENT", async () => {
        expect((await rejectionOf(h.client.readLogs({ limit: 5_001 }))).code).toBe(Code.InvalidArgument);
      });
    });

    describe("TailLogs", () => {
      it("delivers a newly ingested record within a second", async () => {
        const { project } = tenant();
        const rec = await liveTail({ projectId: project }, { probe: () => makeLogRecord({ projectId: project, path: "/probe" }) });
        const started = performance.now();
        const log = await ingest(makeLogRecord({ projectId: project, timestamp: new Date(h.now().getTime() - 1_000) }));
        const got = await rec.waitFor((m) => m.log?.requestId === log.requestId, { timeoutMs: 1_000 });
        expect(got.at - started).toBeLessThan(1_000);
        expect(got.message.log).toEqual(create(LogRecordSchema, { ...log, ingestedAt: got.message.log!.ingestedAt }));
      });

      it("delivers only records matching the filter inside the caller's scope", async () => {
        const alice = tenant();
        const bob = tenant();
        const rec = await liveTail({ method: "POST" }, {
          call: as.user(alice.user), probe: () => makeLogRecord({ projectId: alice.project, method: "POST", path: "/probe" }),
        });
        const match = await ingest(makeLogRecord({ projectId: alice.project, method: "POST" }));
        await ingest(makeLogRecord({ projectId: alice.project, method: "GET" }));
        await ingest(makeLogRecord({ projectId: bob.project, method: "POST" }));
        await ingest(makeLogRecord({ projectId: bob.project, userId: alice.user, method: "POST" }));
        const ownCall = await ingest(makeLogRecord({ projectId: "", userId: alice.user, method: "POST" }));
        const end = await ingest(makeLogRecord({ projectId: alice.project, method: "POST" }));
        await rec.waitFor((m) => m.log?.requestId === end.requestId, { timeoutMs: 2_000 });
        await sleep(300); // a poll later: anything else would have arrived by now
        expect(idsOf(tailed(rec))).toEqual([match.requestId, ownCall.requestId, end.requestId]);
      });

      it("ends the stream once `to` has passed", async () => {
        const rec = track(recordStream<TailLogsResponse>((signal) =>
          h.client.tailLogs({ to: timestampFromDate(new Date(h.now().getTime() + 300)) }, { ...as.admin(), signal })));
        expect(await rec.ended(3_000)).toBeUndefined();
      });

      it("fails with INVALID_ARGUMENT for an invalid filter", async () => {
        const rec = track(recordStream<TailLogsResponse>((signal) => h.client.tailLogs({ statusCode: 42 }, { ...as.admin(), signal })));
        expect(outcome(await rec.ended(3_000))).toBe("failed with invalid_argument");
      });

      it("fails with UNAUTHENTICATED without caller identity", async () => {
        const rec = track(recordStream<TailLogsResponse>((signal) => h.client.tailLogs({}, { signal })));
        expect(outcome(await rec.ended(3_000))).toBe("failed with unauthenticated");
      });

      it("delivers on instance B, within a second, a record ingested through instance A (replicas sharing the database)", async () => {
        const replica = await startReplica();
        const { project } = tenant();
        const rec = await liveTail({ projectId: project }, {
          client: replica.client, via: h.client, probe: () => makeLogRecord({ projectId: project, path: "/probe" }),
        });
        const started = performance.now();
        const log = await ingest(makeLogRecord({ projectId: project }), as.admin(), h.client);
        const got = await rec.waitFor((m) => m.log?.requestId === log.requestId, { timeoutMs: 1_000 });
        expect(got.at - started).toBeLessThan(1_000);
      });
    });
  });
}

loggingSuite("embedded", () => undefined);

describeWithServer("TEST_MONGO_URL", "logging service on MongoDB", (url) => {
  loggingSuite("MongoDB", () => url);
});

// Quality bar: with MongoDB gone, calls fail fast with UNAVAILABLE (never
// hang), and the same instance serves again by itself once it returns. A
// FerretDB of the suite's own, so stopping it disturbs no other suite.
describe.skipIf(!haveFerretdb && process.env.CI !== "true")("logging service while its MongoDB is down (a FerretDB of its own)", () => {
  let dir: string;
  let port: number;
  let ferretdb: Awaited<ReturnType<typeof startFerretdb>> | undefined;
  let service: LoggingInstance | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mesh-logging-ferretdb-"));
    port = await freePort();
    ferretdb = await startFerretdb(dir, port);
    const config = loadLoggingConfig({
      LOGGING_PORT: "0", LOG_LEVEL: "silent", SHUTDOWN_DRAIN_MS: "1000", MONGO_URL: `mongodb://127.0.0.1:${port}/`, MONGO_DB: "outage",
    });
    service = await startLoggingInstance(config, { directory: createFakeDirectory() });
  });
  afterEach(async () => {
    await service?.stop();
    if (ferretdb) await stopProcess(ferretdb);
    await rm(dir, { recursive: true, force: true });
    service = ferretdb = undefined;
  });

  it("fails IngestLog, IngestLogBatch and QueryLogs with UNAVAILABLE within 5 s each while MongoDB is down", { timeout: 60_000 }, async () => {
    const client = service!.client;
    await client.ingestLog({ log: makeLogRecord() }, as.admin());
    await stopProcess(ferretdb!);
    expect(await timedUnavailable(() => client.ingestLog({ log: makeLogRecord() }, as.admin()))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => client.ingestLogBatch({ logs: [makeLogRecord()] }, as.admin()))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => client.queryLogs({}, as.admin()))).toBeLessThan(5_000);
    expect(await timedUnavailable(() => client.ingestLog({ log: makeLogRecord() }, as.admin()))).toBeLessThan(5_000);
  });

  it("ingests and queries again by itself once MongoDB returns, keeping what was stored before", { timeout: 60_000 }, async () => {
    const client = service!.client;
    const before = makeLogRecord();
    await client.ingestLog({ log: before }, as.admin());
    await stopProcess(ferretdb!);
    await timedUnavailable(() => client.ingestLog({ log: makeLogRecord() }, as.admin()));

    ferretdb = await startFerretdb(dir, port);
    const after = makeLogRecord();
    expect(await untilSucceeds(() => client.ingestLog({ log: after }, as.admin()), 15_000)).toBeLessThan(15_000);
    const res = await client.queryLogs({}, as.admin());
    expect(idsOf(res.logs).sort()).toEqual([before.requestId, after.requestId].sort());
  });

  it("keeps a tail open through the outage and delivers records ingested after MongoDB returns", { timeout: 60_000 }, async () => {
    const client = service!.client;
    const rec = track(recordStream<TailLogsResponse>((signal) => client.tailLogs({}, { ...as.admin(), signal })));
    const deadline = performance.now() + 5_000;
    for (;;) { // live once a probe arrives
      const probe = makeLogRecord({ path: "/probe" });
      await client.ingestLog({ log: probe }, as.admin());
      if (await rec.waitFor((m) => m.log?.requestId === probe.requestId, { timeoutMs: 300 }).then(() => true, () => false)) break;
      if (performance.now() > deadline) throw new Error("the tail saw no probe within 5 s");
    }
    await stopProcess(ferretdb!);
    await timedUnavailable(() => client.ingestLog({ log: makeLogRecord() }, as.admin()));
    await sleep(500); // the tail's poller fails a few times meanwhile
    expect(rec.done).toBe(false);

    ferretdb = await startFerretdb(dir, port);
    const after = makeLogRecord();
    await untilSucceeds(() => client.ingestLog({ log: after }, as.admin()), 15_000);
    await rec.waitFor((m) => m.log?.requestId === after.requestId, { timeoutMs: 5_000 });
  });
});

import { describe, expect, it } from "vitest";
import { queuedRecord, type QueuedRecord } from "./queued-record.js";
import { createRecordBuffer } from "./record-buffer.js";
import { approxRecordBytes, planRound } from "./round.js";

function bufferOf(...paths: string[]) {
  const b = createRecordBuffer<QueuedRecord>(100);
  paths.forEach((path, i) => b.push(queuedRecord({ requestId: `r${i}`, path })));
  return b;
}
const ids = (messages: QueuedRecord[][]) => messages.map((m) => m.map((r) => r.requestId));

describe("planRound", () => {
  it("cuts the oldest records into messages of batchSize, at most maxMessages of them", () => {
    const b = bufferOf(...Array.from({ length: 7 }, () => "/a"));
    expect(ids(planRound(b, { batchSize: 2, maxMessageBytes: 1e6, maxMessages: 3 })))
      .toEqual([["r0", "r1"], ["r2", "r3"], ["r4", "r5"]]);
    expect(ids(planRound(b, { batchSize: 5, maxMessageBytes: 1e6, maxMessages: 3 }))).toEqual([["r0", "r1", "r2", "r3", "r4"], ["r5", "r6"]]);
  });

  it("closes a message early when its records' text would pass maxMessageBytes, and sends an oversized record alone", () => {
    const big = `/${"x".repeat(1000)}`;
    const b = bufferOf("/a", "/b", big, "/c");
    const limit = approxRecordBytes(b.at(0)) * 2;
    expect(ids(planRound(b, { batchSize: 10, maxMessageBytes: limit, maxMessages: 10 }))).toEqual([["r0", "r1"], ["r2"], ["r3"]]);
  });

  it("plans nothing for an empty buffer", () => {
    expect(planRound(bufferOf(), { batchSize: 10, maxMessageBytes: 1e6, maxMessages: 10 })).toEqual([]);
  });
});

describe("queuedRecord", () => {
  it("sends sizes beyond uint32 as its maximum and a status that is no int32 as 0 (refused alone, not the message)", () => {
    const r = queuedRecord({ requestId: "r", bytesIn: 2 ** 40, bytesOut: -1, statusCode: 2.5 });
    expect([r.bytesIn, r.bytesOut, r.statusCode]).toEqual([0xffff_ffff, 0, 0]);
  });
});

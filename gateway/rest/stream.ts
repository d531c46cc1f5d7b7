import type { JsonValue } from "@bufbuild/protobuf";
import type { ErrorEnvelope } from "../error-envelope.js";
import type { AnyRequest, AnyResponse } from "../server/listener.js";

/** How a server stream reaches an HTTP client. */
export type StreamFormat = "sse" | "ndjson";

/** SSE when the client accepts `text/event-stream` (browsers' EventSource do), NDJSON otherwise. */
export function streamFormatOf(req: AnyRequest): StreamFormat {
  return /(^|,)\s*text\/event-stream\b/i.test(String(req.headers.accept ?? "")) ? "sse" : "ndjson";
}

/**
 * Writes a server stream: one SSE `data:` event or one NDJSON line per
 * message, flushed as it comes, and a failure as a final SSE `event: error`
 * or NDJSON `{"error": …}` line carrying the error envelope. Respects
 * backpressure: a slow client slows the upstream read, never buffers it all.
 */
export async function writeStream(res: AnyResponse, format: StreamFormat, messages: AsyncIterable<JsonValue>,
  failure: (err: unknown) => ErrorEnvelope): Promise<void> {
  const write = async (text: string) => {
    if (!(res as { write(chunk: string): boolean }).write(text)) {
      await new Promise<void>((resolve) => { res.once("drain", resolve); res.once("close", resolve); });
    }
  };
  try {
    for await (const m of messages) {
      await write(format === "sse" ? `data: ${JSON.stringify(m)}\n\n` : `${JSON.stringify(m)}\n`);
    }
  } catch (err) {
    const envelope = failure(err);
    await write(format === "sse" ? `event: error\ndata: ${JSON.stringify(envelope)}\n\n` : `${JSON.stringify({ error: envelope })}\n`);
  }
  res.end();
}

export const streamContentType: Readonly<Record<StreamFormat, string>> = {
  sse: "text/event-stream; charset=utf-8",
  ndjson: "application/x-ndjson; charset=utf-8",
};

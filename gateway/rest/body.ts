import { Code, ConnectError } from "@connectrpc/connect";
import { httpError } from "../error-envelope.js";
import type { AnyRequest } from "../server/listener.js";

/**
 * Reads a request body up to `maxBytes`: a declared Content-Length over the
 * limit is refused before reading, a body that grows past it while streaming
 * is refused as soon as it does (RESOURCE_EXHAUSTED, answered as 413).
 */
export async function readBody(req: AnyRequest, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const tooLarge = (maxBytes: number) =>
  httpError(`the request body exceeds ${maxBytes} bytes`, Code.ResourceExhausted, 413, "PAYLOAD_TOO_LARGE");

/**
 * Parses a JSON request body: empty → undefined; malformed JSON or nesting
 * deeper than `maxDepth` → INVALID_ARGUMENT naming the problem (the depth
 * is checked on the text before parsing, so a hostile body cannot make the
 * parser recurse).
 */
export function parseJsonBody(raw: Buffer, maxDepth: number): unknown {
  const text = raw.toString("utf8").trim();
  if (text === "") return undefined;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw new ConnectError(`the JSON body nests deeper than ${maxDepth} levels`, Code.InvalidArgument);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConnectError(`malformed JSON body: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

import { createHash, randomBytes } from "node:crypto";

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** 43 base62 digits hold 256 bits (62^43 > 2^256). */
const digits = 43;

export const API_KEY_PREFIX = "gw_";

/** Base62 of `bytes`, left-padded to a fixed width so every key has one length. */
export function base62(bytes: Uint8Array, width = digits): string {
  let n = BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`);
  let out = "";
  while (n > 0n) {
    out = alphabet[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out.padStart(width, "0");
}

/** A new API key: "gw_" and 256 random bits in base62, its display prefix and its stored hash. */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + base62(randomBytes(32));
  return { key, prefix: key.slice(0, API_KEY_PREFIX.length + 8), hash: hashApiKey(key) };
}

/** Lower-case hex SHA-256: how keys are stored and looked up. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { API_KEY_PREFIX, base62, generateApiKey, hashApiKey } from "./key-format.js";

const BASE62 = /^[0-9A-Za-z]+$/;

describe("base62", () => {
  it("pads 32 zero bytes to 43 zeros", () => {
    expect(base62(new Uint8Array(32))).toBe("0".repeat(43));
  });

  it("writes 32 bytes of 0xff (2^256 - 1) in 43 digits", () => {
    const digits = base62(new Uint8Array(32).fill(0xff));
    expect([digits.length, BASE62.test(digits)]).toEqual([43, true]);
  });

  it("uses the alphabet 0-9, A-Z, a-z in that order", () => {
    expect([9, 10, 35, 36, 61, 62].map((n) => base62(Uint8Array.of(n), 2))).toEqual(["09", "0A", "0Z", "0a", "0z", "10"]);
  });

  it("reads the bytes as one big-endian number", () => {
    // 0x0100 = 256 = 4 * 62 + 8
    expect(base62(Uint8Array.of(0x01, 0x00), 3)).toBe("048");
  });

  it("left-pads to the width asked for", () => {
    expect(base62(Uint8Array.of(1), 5)).toBe("00001");
  });
});

describe("generateApiKey", () => {
  it("answers gw_ and 43 base62 digits", () => {
    expect(generateApiKey().key).toMatch(/^gw_[0-9A-Za-z]{43}$/);
  });

  it("starts every key with the API key prefix", () => {
    expect(generateApiKey().key.startsWith(API_KEY_PREFIX)).toBe(true);
  });

  it("answers the first 11 characters as the display prefix", () => {
    const { key, prefix } = generateApiKey();
    expect(prefix).toBe(key.slice(0, 11));
  });

  it("answers the key's hash as the stored hash", () => {
    const { key, hash } = generateApiKey();
    expect(hash).toBe(hashApiKey(key));
  });

  it("answers a different key each time", () => {
    expect(generateApiKey().key).not.toBe(generateApiKey().key);
  });
});

describe("hashApiKey", () => {
  it("answers the lower-case hex SHA-256 of the key", () => {
    // FIPS 180-2 test vector for "abc".
    expect(hashApiKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("hashes the whole key text", () => {
    const key = `gw_${"0".repeat(43)}`;
    expect(hashApiKey(key)).toBe(createHash("sha256").update(key, "utf8").digest("hex"));
  });
});

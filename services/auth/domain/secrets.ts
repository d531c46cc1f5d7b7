import { createHash, randomBytes } from "node:crypto";

/** A fresh 256-bit secret, base64url: refresh, verification and reset tokens. */
export function randomToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Hex SHA-256: the only form in which tokens are stored. */
export function sha256Hex(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

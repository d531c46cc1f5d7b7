import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { ACCESS_TOKEN_ALG } from "../../../lib/access-token.js";
import type { Keyring } from "./keyring.js";

export interface IssuedAccessToken {
  readonly token: string;
  readonly jti: string;
  readonly expiresAt: Date;
}

export interface AccessTokenSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
}

/**
 * Signs an access token for `userId` with the keyring's active key: EdDSA,
 * `kid` in the header, `iss`, `aud`, `sub`, `jti`, `iat`, `exp` and `roles`.
 */
export async function issueAccessToken(keyring: Keyring, settings: AccessTokenSettings,
  subject: { userId: string; roles: readonly string[] }, now: Date): Promise<IssuedAccessToken> {
  const signer = keyring.signer();
  const jti = randomUUID();
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + settings.ttlSeconds;
  const token = await new SignJWT({ roles: [...subject.roles] })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: signer.kid, typ: "JWT" })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(subject.userId)
    .setJti(jti)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(signer.key);
  return { token, jti, expiresAt: new Date(exp * 1000) };
}

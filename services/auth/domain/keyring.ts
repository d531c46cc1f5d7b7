import { Code, ConnectError } from "@connectrpc/connect";
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type JWK, type JWTVerifyGetKey } from "jose";
import { ACCESS_TOKEN_ALG } from "../../../lib/access-token.js";
import type { AuthStore, SigningKeyRecord } from "../storage/port.js";

/** The key that signs new access tokens. */
export interface Signer {
  readonly kid: string;
  readonly key: CryptoKey;
}

/**
 * The auth service's signing keys: one active signer, plus every older key
 * whose tokens may still be alive, published as the JWKS.
 */
export interface Keyring {
  signer(): Signer;
  /** Public keys (no private members) that verify every live token. */
  publicJwks(): JWK[];
  /** Key resolver for `jwtVerify`, matching `publicJwks()`. */
  readonly verificationKeys: JWTVerifyGetKey;
}

interface LoadedKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly createdAt: Date;
}

/**
 * Keys from configuration (production): a JSON array of private Ed25519 JWKs.
 * The active one is `activeKid`, else the last; all stay published until the
 * operator removes them (after the access-token lifetime has passed).
 */
export async function keyringFromConfig(privateJwks: readonly JWK[], activeKid?: string): Promise<Keyring> {
  if (privateJwks.length === 0) throw new Error("AUTH_SIGNING_KEYS holds no key");
  const keys = await Promise.all(privateJwks.map((jwk) => importKey(jwk, new Date(0))));
  const active = activeKid ? keys.find((k) => k.kid === activeKid) : keys[keys.length - 1];
  if (!active) throw new Error(`AUTH_ACTIVE_KID ${activeKid} is not among AUTH_SIGNING_KEYS`);
  return keyringOf(active, keys);
}

export interface StoredKeyringOptions {
  readonly store: AuthStore;
  readonly now: () => Date;
  /** A new signer is generated when the newest key is older than this. */
  readonly rotateAfterMs: number;
  /** Lifetime of access tokens: an old key stays published this long after its successor appears. */
  readonly accessTokenTtlMs: number;
}

/**
 * Keys generated and persisted by the service (embedded and development
 * mode). Generates the first key, and a successor once the newest is older
 * than `rotateAfterMs`; a superseded key stays verifiable until every token it
 * signed has expired.
 */
export async function loadStoredKeyring(opts: StoredKeyringOptions): Promise<Keyring & { rotate(): Promise<Keyring> }> {
  let records = await opts.store.listSigningKeys();
  const newest = records[records.length - 1];
  if (!newest || opts.now().getTime() - newest.createdAt.getTime() >= opts.rotateAfterMs) {
    await opts.store.insertSigningKey(await generateSigningKey(opts.now()));
    records = await opts.store.listSigningKeys();
  }
  const keys = await Promise.all(records.map((r) => importKey(r.privateJwk as JWK, r.createdAt)));
  const now = opts.now().getTime();
  const live = keys.filter((k, i) => {
    const successor = keys[i + 1];
    return !successor || successor.createdAt.getTime() + opts.accessTokenTtlMs > now;
  });
  const ring = keyringOf(keys[keys.length - 1]!, live);
  return {
    ...ring,
    async rotate() {
      await opts.store.insertSigningKey(await generateSigningKey(opts.now()));
      return loadStoredKeyring(opts);
    },
  };
}

/** A new Ed25519 key pair, identified by its RFC 7638 thumbprint. */
export async function generateSigningKey(createdAt: Date): Promise<SigningKeyRecord> {
  const { privateKey, publicKey } = await generateKeyPair(ACCESS_TOKEN_ALG, { crv: "Ed25519", extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: ACCESS_TOKEN_ALG };
  return { kid, alg: ACCESS_TOKEN_ALG, privateJwk, publicJwk: publicOnly({ ...publicJwk, kid }), createdAt };
}

async function importKey(jwk: JWK, createdAt: Date): Promise<LoadedKey> {
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.d !== "string") {
    throw new ConnectError("signing keys must be private Ed25519 JWKs", Code.Internal);
  }
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicOnly(jwk)));
  const privateKey = (await importJWK({ ...jwk, alg: ACCESS_TOKEN_ALG }, ACCESS_TOKEN_ALG)) as CryptoKey;
  return { kid, privateKey, publicJwk: publicOnly({ ...jwk, kid }), createdAt };
}

function publicOnly(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.kid ? { kid: jwk.kid } : {}), alg: ACCESS_TOKEN_ALG, use: "sig" };
}

function keyringOf(active: LoadedKey, published: readonly LoadedKey[]): Keyring {
  const jwks = published.map((k) => k.publicJwk);
  return {
    signer: () => ({ kid: active.kid, key: active.privateKey }),
    publicJwks: () => jwks,
    verificationKeys: createLocalJWKSet({ keys: jwks }),
  };
}

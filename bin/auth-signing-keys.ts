import { generateSigningKey } from "../services/auth/domain/keyring.js";

/**
 * Prints a new value for the auth service's `AUTH_SIGNING_KEYS` (required when
 * NODE_ENV=production): a JSON array holding one fresh private Ed25519 JWK,
 * made by the same code the service uses to generate its own keys.
 *
 *   node dist/bin/auth-signing-keys.js            # from the image: docker run --rm --entrypoint node mesh:<version> /app/dist/bin/auth-signing-keys.js
 *
 * deploy/compose.yaml runs it once to create the stack's key; for Kubernetes,
 * put its output in the `mesh-auth` Secret. To rotate, append a new key to the
 * array (the last one signs, or AUTH_ACTIVE_KID) and drop the old one once
 * the access-token lifetime has passed.
 */
const record = await generateSigningKey(new Date());
process.stdout.write(`${JSON.stringify([record.privateJwk])}\n`);

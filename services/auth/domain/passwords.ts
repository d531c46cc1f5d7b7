import { hash, verify } from "@node-rs/argon2";

/** Hashes and checks passwords. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password or a malformed hash; never throws for those. */
  verify(hash: string, password: string): Promise<boolean>;
}

/** Argon2id cost (OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane). */
export interface Argon2Cost {
  readonly memoryKib: number;
  readonly passes: number;
}

export const defaultArgon2Cost: Argon2Cost = { memoryKib: 19_456, passes: 2 };

/** argon2id through `@node-rs/argon2` (native, off the event loop). */
export function createArgon2Hasher(cost: Argon2Cost = defaultArgon2Cost): PasswordHasher {
  // 2 is Argon2id in @node-rs/argon2's Algorithm (a const enum, not importable under isolatedModules).
  const options = { algorithm: 2, memoryCost: cost.memoryKib, timeCost: cost.passes, parallelism: 1 };
  return {
    hash: (password) => hash(password, options),
    verify: (hashed, password) => verify(hashed, password).catch(() => false),
  };
}

export const PASSWORD_RULE = "must be 8 to 128 characters and contain at least one letter and one digit";

/** The password policy: undefined when acceptable, else why not (naming the rule). */
export function passwordProblem(password: string, email: string): string | undefined {
  if (password.length < 8 || password.length > 128 || !/\p{L}/u.test(password) || !/\p{N}/u.test(password)) {
    return PASSWORD_RULE;
  }
  if (password.trim().toLowerCase() === email) return "must not be the email address";
  return undefined;
}

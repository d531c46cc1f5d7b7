import { describe } from "vitest";

/**
 * Declares a suite that needs a real server at the URL in `variable`
 * (TEST_DATABASE_URL, TEST_REDIS_URL, TEST_MONGO_URL). Without it the suite is
 * skipped with a message saying so, except under CI=true, where a missing
 * server is a failure: CI must prove every adapter against a real server.
 */
export function describeWithServer(variable: string, name: string, body: (url: string) => void): void {
  const url = process.env[variable];
  if (url) {
    describe(name, () => body(url));
    return;
  }
  if (process.env.CI === "true") {
    describe(name, () => {
      throw new Error(`${variable} is not set: CI must run "${name}" against a real server (see .ci/run)`);
    });
    return;
  }
  process.stderr.write(`\n[skip] ${name}: set ${variable} to run it against a real server (.ci/run does)\n`);
  describe.skip(name, () => body(""));
}

/** A schema name unique to one test run, so suites sharing a server never see each other's rows. */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

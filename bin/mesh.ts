/**
 * The production entry point, one for every process of the mesh (the image's
 * `ENTRYPOINT ["node", "/app/dist/bin/mesh.js"]`, deploy/README.md):
 *
 *   node dist/bin/mesh.js <auth|project|logging|analytics|gateway> [args...]
 *
 * runs that process's `main` as if node had been started with it: the name is
 * taken out of `process.argv`, so `mesh.js gateway --check-config FILE` is
 * `gateway/main.ts --check-config FILE`. A missing or unknown name prints the
 * usage and exits 2; `--help` prints it and exits 0.
 */

/** Each process's main module. Literal specifiers, so tsc (tsconfig.build.json) compiles what they import. */
const MAINS = {
  auth: () => import("../services/auth/main.js"),
  project: () => import("../services/project/main.js"),
  logging: () => import("../services/logging/main.js"),
  analytics: () => import("../services/analytics/main.js"),
  gateway: () => import("../gateway/main.js"),
} as const satisfies Record<string, () => Promise<unknown>>;

type ProcessName = keyof typeof MAINS;

const USAGE = `usage: mesh <${Object.keys(MAINS).join("|")}> [args...]
  runs one process of the mesh, e.g. \`mesh gateway\` or \`mesh gateway --check-config FILE\`
`;

const isProcessName = (name: string | undefined): name is ProcessName => name !== undefined && Object.hasOwn(MAINS, name);

const name = process.argv[2];
if (name === "--help" || name === "-h") {
  process.stdout.write(USAGE);
} else if (!isProcessName(name)) {
  process.stderr.write(name === undefined ? USAGE : `mesh: unknown process ${JSON.stringify(name)}\n${USAGE}`);
  process.exitCode = 2;
} else {
  process.argv.splice(2, 1);
  await MAINS[name]();
}

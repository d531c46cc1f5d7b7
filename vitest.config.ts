import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{lib,services,gateway,test,scripts}/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});

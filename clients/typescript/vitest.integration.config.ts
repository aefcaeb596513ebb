import { defineConfig } from "vitest/config";

// Against a running CoTeX (test/integration/system.ts lists the environment): one file, in order, one at a time.
export default defineConfig({
  test: {
    include: ["test/integration/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    sequence: { concurrent: false, shuffle: false },
    reporters: ["default"],
  },
});

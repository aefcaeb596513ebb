import { defineConfig } from "vitest/config";

// The fast layer: no server, no network beyond loopback servers the tests start themselves.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    testTimeout: 10_000,
  },
});

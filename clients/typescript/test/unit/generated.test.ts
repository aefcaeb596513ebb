import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs script without declarations
import { generatedFiles } from "../../scripts/generate.mjs";

// The checked-in documents are kept equal to what the server says by CoTeX.Tests/Clients/ClientSchemaTests.cs; this
// keeps the generated TypeScript equal to what the documents give. Together: a contract change that was not
// regenerated fails a test.
describe("generated types", () => {
  it("src/generated/*.ts are what scripts/generate.mjs makes of openapi/*.json", async () => {
    const files = (await generatedFiles()) as Record<string, string>;
    for (const [path, expected] of Object.entries(files)) {
      const actual = await readFile(path, "utf8").catch(() => "(missing)");
      expect(actual, `${path} is stale: run \`npm run generate\` and commit it`).toBe(expected);
    }
  });
});

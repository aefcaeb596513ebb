// `npm run bench`: the TypeScript client's figures for docs/benchmarks.md, against a running CoTeX described by the
// same environment as the integration tests (test/integration/system.ts; the services need RateLimiting__Enabled=false
// to take 10,000 webhooks in seconds, as CoTeX.Tests' TypeScriptClientTests sets it).
//   1. catch-up: a client that missed 10,000 events connects from position 0: time until it holds all (end to end:
//      connect, subscribe, every batch parsed and handed to a listener), after a warm-up catch-up of 1,000;
//   2. memory: the heap and RSS the client adds while connected and caught up (one feed; then 100 feeds);
//   3. size: the browser build, gzipped, and how much of it is SignalR.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { CoTeXFeed } from "../src/index.js";
import { deliverMany, liveRealtimeUrls, newUser, payload, type User } from "../test/integration/system.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc (npm run bench does)");

async function settle(): Promise<NodeJS.MemoryUsage> {
  // Closed sockets and finished catch-ups are freed over a few turns of the event loop, not by one collection.
  for (let i = 0; i < 10; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 200));
  }
  return process.memoryUsage();
}

async function userWhoMissed(count: number): Promise<User> {
  const user = await newUser();
  await deliverMany(user.repo, "push", await payload("push/payload.json", user.repo.fullName), count, 16);
  return user;
}

/** ms until a feed from position 0 holds all `count` events, and until the first. */
async function catchUp(user: User, count: number): Promise<{ allMs: number; firstMs: number }> {
  const token = await user.token(); // asked before the clock starts: minting is the test's, not the client's
  const feed = new CoTeXFeed({ realtimeUrls: liveRealtimeUrls()[0]!, accessToken: () => token, fromPosition: 0 });
  let received = 0;
  let firstMs = 0;
  let lastPosition = 0;
  const t0 = performance.now();
  const done = new Promise<number>((resolveDone, reject) => {
    feed.on("event", (e) => {
      if (received++ === 0) firstMs = performance.now() - t0;
      if (e.position <= lastPosition) reject(new Error(`out of order: ${e.position} after ${lastPosition}`));
      lastPosition = e.position;
      if (received === count) resolveDone(performance.now() - t0);
    });
    feed.on("closed", (error) => reject(error ?? new Error("closed")));
  });
  feed.start();
  const allMs = await done;
  await feed.close();
  return { allMs, firstMs };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

// 1. Catch-up
const missed = Number(process.env.COTEX_BENCH_MISSED ?? 10_000);
console.log(`storing ${missed} + 1,000 events through signed webhooks...`);
await catchUp(await userWhoMissed(1_000), 1_000); // warm-up: the replica's and this process's JIT
const user = await userWhoMissed(missed);
const runs: { allMs: number; firstMs: number }[] = [];
for (let i = 0; i < 5; i++) runs.push(await catchUp(user, missed));
const allMs = runs.map((r) => r.allMs);
console.log(
  `catch-up of ${missed}: median ${median(allMs).toFixed(0)} ms (runs: ${allMs.map((m) => m.toFixed(0)).join(", ")}), ` +
    `first event after ${median(runs.map((r) => r.firstMs)).toFixed(0)} ms`,
);

// 2. Memory while caught up
const token = await user.token();
const feeds: CoTeXFeed[] = [];
async function openFeeds(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const feed = new CoTeXFeed({ realtimeUrls: liveRealtimeUrls(), accessToken: () => token, fromPosition: null });
    feeds.push(feed);
    const live = new Promise<void>((r) => feed.once("caughtUp", () => r()));
    feed.start();
    await live;
  }
}
await openFeeds(1); // warm-up: what every first connection loads (modules, SignalR's protocol objects)
await feeds.pop()!.close();
const before = await settle();
await openFeeds(1);
const one = await settle();
await openFeeds(99);
const hundred = await settle();
await Promise.all(feeds.map((f) => f.close()));
console.log(
  // One feed's own share is below what V8's heap moves by between collections; 100 feeds show it.
  `memory while caught up: the process with one feed ${mb(one.heapUsed)} MB heap, ${mb(one.rss)} MB RSS; ` +
    `each feed adds ${((hundred.heapUsed - before.heapUsed) / 1024 / 100).toFixed(1)} KB of heap (100 feeds)`,
);

// 3. Bundle size
const bundle = await readFile(join(root, "dist", "browser", "cotex-client.js"));
const signalrOnly = await build({
  stdin: { contents: 'export * from "@microsoft/signalr";', resolveDir: root },
  bundle: true, format: "esm", platform: "browser", target: ["es2022"], minify: true, write: false, logLevel: "silent",
});
const signalr = signalrOnly.outputFiles[0]!.contents;
const gz = (b: Uint8Array) => gzipSync(b, { level: 9 }).length / 1024;
console.log(
  `browser build: ${(bundle.length / 1024).toFixed(1)} KB, ${gz(bundle).toFixed(1)} KB gzipped ` +
    `(SignalR alone: ${gz(signalr).toFixed(1)} KB gzipped)`,
);
process.exit(0);

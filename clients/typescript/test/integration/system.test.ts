// The package against a real CoTeX (Api, two Realtime replicas, Postgres, Redis): see system.ts for the environment.
// One file, run in order: the last scenario kills a replica, and the browser's runs before it.
import { createServer, type Server } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  AccountClosedError,
  CoTeXFeed,
  ConnectionError,
  ProblemError,
  TokenRejectedError,
  type CoTeXError,
  type FeedItem,
  type GitHubEventSummary,
  type ReconnectNotice,
} from "../../src/index.js";
import {
  deliver,
  deliverMany,
  devToolsSignature,
  eventually,
  killReplica,
  liveRealtimeUrls,
  mintToken,
  newUser,
  payload,
  sign,
  system,
  type Delivered,
  type User,
} from "./system.js";

const feeds: CoTeXFeed[] = [];
afterAll(async () => {
  await Promise.all(feeds.map((f) => f.close()));
});

/** A feed for `user` that records everything it is told. */
function watch(user: User, options: Partial<ConstructorParameters<typeof CoTeXFeed>[0]> = {}) {
  const feed = user.client.feed({ realtimeUrls: liveRealtimeUrls(), backoff: { initialDelayMs: 100, maxDelayMs: 1_000 }, ...options });
  feeds.push(feed);
  const received: GitHubEventSummary[] = [];
  const errors: CoTeXError[] = [];
  const notices: ReconnectNotice[] = [];
  const connectedTo: string[] = [];
  feed.on("event", (e) => received.push(e));
  feed.on("error", (e) => errors.push(e));
  feed.on("reconnectRequested", (n) => notices.push(n));
  feed.on("connected", (url) => connectedTo.push(url));
  return { feed, received, errors, notices, connectedTo };
}

/** Each position once, strictly increasing, and exactly the deliveries' events. */
function expectExactly(received: GitHubEventSummary[], delivered: Delivered[]): void {
  const positions = received.map((e) => e.position);
  expect(positions, "strictly increasing (in order, no duplicate)").toEqual([...positions].sort((a, b) => a - b).filter((p, i, a) => i === 0 || p !== a[i - 1]));
  expect(received.map((e) => [e.id, e.position])).toEqual(delivered.map((d) => [d.id, d.position]));
}

describe("against a running CoTeX", () => {
  it("signs webhooks the way CoTeX.DevTools does", async () => {
    const body = await payload("issues/opened.payload.json", "octo/cat");
    expect(sign("s3cret", body)).toBe(await devToolsSignature("s3cret", body));
  });

  it("REST: the user's repo is listed, an unknown one is a ProblemError carrying the request id the server logged", async () => {
    const user = await newUser();
    const list = await user.client.repos.list();
    expect(list.repos.map((r) => r.id)).toEqual([user.repo.id]);
    expect(list.plan).toMatchObject({ name: "free", used: 1 });

    const error = await user.client.repos.pause("00000000-0000-7000-8000-000000000000").catch((e) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ status: 404, title: "Repo not found" });
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);

    const paused = await user.client.repos.pause(user.repo.id);
    expect(paused.paused).toBe(true);
    expect((await user.client.repos.resume(user.repo.id)).paused).toBe(false);
    expect((await user.client.repos.rotateSecret(user.repo.id)).webhookSecret).not.toBe(user.repo.webhookSecret);
  });

  it("live delivery: real GitHub payloads arrive as events, and each one's payload is readable over REST", async () => {
    const user = await newUser();
    const { feed, received } = watch(user, { fromPosition: null });
    feed.start();
    await eventually(() => feed.state === "live", "live");

    const sent: [string, string][] = [
      ["issues", "issues/opened.payload.json"],
      ["push", "push/payload.json"],
      ["pull_request", "pull_request/closed.payload.json"],
    ];
    const delivered: Delivered[] = [];
    const bodies: Buffer[] = [];
    for (const [type, path] of sent) {
      const body = await payload(path, user.repo.fullName);
      bodies.push(body);
      delivered.push(await deliver(user.repo, type, body));
    }
    await eventually(() => received.length === 3, "3 events");

    expectExactly(received, delivered);
    expect(received.map((e) => e.type)).toEqual(["issues", "push", "pull_request"]);
    expect(received.every((e) => e.repoFullName === user.repo.fullName && e.repoId === user.repo.id)).toBe(true);
    expect(received[0]!.action).toBe("opened");
    const detail = await user.client.events.get(received[0]!.id);
    expect(detail.payload).toEqual(JSON.parse(bodies[0]!.toString()));
    await feed.close();
  });

  it("resume: a restarted app gets exactly what it missed from the position it saved, and the browser's offline/online too", async () => {
    const user = await newUser();
    let saved: number | undefined;
    const store = { loadPosition: () => saved, savePosition: (p: number) => void (saved = p) };

    const first = watch(user, { ...store, fromPosition: 0 });
    first.feed.start();
    await eventually(() => first.feed.state === "live", "live");
    const before = await deliverMany(user.repo, "issues", await payload("issues/opened.payload.json", user.repo.fullName), 2, 1);
    await eventually(() => first.received.length === 2, "2 events");
    await first.feed.close();
    expect(saved).toBe(before[1]!.position);

    // The app is not running: 5 events are stored meanwhile.
    const missed = await deliverMany(user.repo, "push", await payload("push/payload.json", user.repo.fullName), 5, 1);
    const network = new EventTarget();
    const second = watch(user, { ...store, onlineEvents: network });
    second.feed.start();
    await eventually(() => second.received.length === 5 && second.feed.state === "live", "the 5 missed");
    expectExactly(second.received, missed);

    // The browser goes offline; 3 more are stored; it comes back.
    network.dispatchEvent(new Event("offline"));
    await eventually(() => second.feed.state === "offline", "offline");
    const whileOffline = await deliverMany(user.repo, "issues", await payload("issues/labeled.payload.json", user.repo.fullName), 3, 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(second.received.length, "nothing while offline").toBe(5);
    network.dispatchEvent(new Event("online"));
    await eventually(() => second.received.length === 8, "the 3 stored while offline");
    expectExactly(second.received, [...missed, ...whileOffline]);
    await second.feed.close();
    expect(saved).toBe(whileOffline[2]!.position);
  });

  it("reset: a position the server cannot resume is a reset item (reload over REST), then live events continue after it", async () => {
    const user = await newUser();
    const stored = await deliverMany(user.repo, "push", await payload("push/payload.json", user.repo.fullName), 3, 1);
    let saved: number | undefined;
    // A position from another server (ahead of this user's): the server says Reset instead of sending events.
    const { feed } = watch(user, { fromPosition: 1_000_000, savePosition: (p) => void (saved = p) });
    const items: FeedItem[] = [];
    let historyRead = false;
    let savedWhileHandlingReset: number | undefined = -1;
    const reading = (async () => {
      for await (const item of feed) {
        items.push(item);
        if (item.type === "reset") {
          savedWhileHandlingReset = saved;
          const history: number[] = [];
          for await (const event of user.client.events.all({ limit: 2 })) history.push(event.id);
          expect(history, "the history to reload, newest first").toEqual(stored.map((d) => d.id).reverse());
          historyRead = true;
        }
        if (items.length === 2) break;
      }
    })();
    // The live event is sent once the app has reloaded the history (else the reload could already include it).
    // (Raced with the reading loop, so a failed history check fails here with its own message.)
    await Promise.race([eventually(() => items.length === 1 && historyRead, "the reset, and the history reloaded"), reading]);
    expect(items[0]).toMatchObject({ type: "reset", position: stored[2]!.position });
    expect(savedWhileHandlingReset, "not saved past a reset before the app has handled it").toBeUndefined();
    const live = await deliver(user.repo, "issues", await payload("issues/opened.payload.json", user.repo.fullName));
    await reading;
    expect(items[1]).toMatchObject({ type: "event", event: { id: live.id, position: live.position } });
    expect(saved, "the loop ended (break) after handling the live event").toBe(live.position);
    await feed.close();
  });

  it("token expiry: short-lived tokens are refreshed for each connection and nothing is lost or repeated", async () => {
    const tokens: string[] = [];
    const user = await newUser({ ttlSeconds: 4, tokens });
    const { feed, received, notices, connectedTo } = watch(user, { fromPosition: 0 });
    feed.start();
    await eventually(() => feed.state === "live", "live");

    const delivered: Delivered[] = [];
    const body = await payload("issues/opened.payload.json", user.repo.fullName);
    const until = Date.now() + 11_000;
    while (Date.now() < until) {
      delivered.push(await deliver(user.repo, "issues", body));
      await new Promise((r) => setTimeout(r, 250));
    }
    await eventually(() => received.length === delivered.length, `${delivered.length} events`);

    expectExactly(received, delivered);
    expect(connectedTo.length, "reconnected as tokens expired").toBeGreaterThanOrEqual(3);
    expect(notices.some((n) => n.code === "token_expired") || connectedTo.length >= 3).toBe(true);
    expect(new Set(tokens).size, "a fresh token per connection").toBeGreaterThanOrEqual(connectedTo.length);
    console.log(`token expiry: ${delivered.length} events over ${connectedTo.length} connections, notices: ${notices.map((n) => n.code).join(",")}`);
    await feed.close();
  });

  it("an expired token is TokenRejectedError (the feed gives up after maxTokenRejections); a closed account ends the feed with AccountClosedError", async () => {
    const user = await newUser();
    const expired = await mintToken(user.userId, -120);
    const stale = new CoTeXFeed({ realtimeUrls: liveRealtimeUrls(), accessToken: () => expired, maxTokenRejections: 2, backoff: { initialDelayMs: 50, maxDelayMs: 100 } });
    feeds.push(stale);
    const staleErrors: CoTeXError[] = [];
    stale.on("error", (e) => staleErrors.push(e));
    stale.start();
    await eventually(() => stale.state === "closed", "the stale feed to end");
    expect(stale.error).toBeInstanceOf(TokenRejectedError);
    expect((stale.error as TokenRejectedError).detail).toMatch(/expired|exp/);

    const { feed } = watch(user, { fromPosition: 0 });
    const items: FeedItem[] = [];
    // What the loop ends with, caught at once: the feed may end before account.delete() has returned.
    const ending = (async () => {
      for await (const item of feed) items.push(item);
    })().then(() => undefined, (error: unknown) => error);
    await eventually(() => feed.state === "live", "live");
    await user.client.account.delete();
    expect(await ending).toBeInstanceOf(AccountClosedError);
    expect(feed.state).toBe("closed");
  });

  it("10,000 missed events are caught up in order, each once", async () => {
    const user = await newUser();
    const started = Date.now();
    const delivered = await deliverMany(user.repo, "push", await payload("push/payload.json", user.repo.fullName), 10_000, 16);
    const storedMs = Date.now() - started;

    const { feed, received } = watch(user, { fromPosition: 0 });
    const t0 = performance.now();
    let caughtUpMs = 0;
    feed.on("caughtUp", () => (caughtUpMs = performance.now() - t0));
    feed.start();
    await eventually(() => received.length >= 10_000 && caughtUpMs > 0, "10,000 events", 60_000);
    const holdAllMs = performance.now() - t0;

    expect(received.length).toBe(10_000);
    expectExactly(received, delivered);
    expect(received.map((e) => e.position)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    console.log(`catch-up: 10,000 events stored in ${storedMs} ms; the feed held all ${holdAllMs.toFixed(0)} ms after start (CaughtUp at ${caughtUpMs.toFixed(0)} ms)`);
    await feed.close();
  }, 180_000);

  it("in a real browser: the browser build connects through the CORS allowlist and receives a webhook's event", async () => {
    const { chromium } = await import("playwright-core");
    const user = await newUser();
    const token = await user.token();
    const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
    const bundle = await readFile(join(root, "dist", "browser", "cotex-client.js"));
    const page = `<!doctype html><meta charset="utf-8"><title>CoTeX client</title>
<script type="module">
  import { CoTeXClient } from "./cotex-client.js";
  const config = await (await fetch("./config.json")).json();
  const client = new CoTeXClient({ apiUrl: config.apiUrl, realtimeUrls: config.realtimeUrls, accessToken: () => config.token });
  window.cotex = { events: [], states: [], errors: [] };
  window.cotex.repos = (await client.repos.list()).repos.map((r) => r.fullName);
  const feed = client.feed({ fromPosition: null });
  feed.on("event", (e) => window.cotex.events.push(e));
  feed.on("state", (s) => window.cotex.states.push(s));
  feed.on("error", (e) => window.cotex.errors.push(e.name + ": " + e.message));
  feed.start();
</script>`;
    const origin = new URL(system.browserOrigin);
    const server: Server = createServer((req, res) => {
      if (req.url === "/cotex-client.js") {
        res.writeHead(200, { "Content-Type": "text/javascript" }).end(bundle);
      } else if (req.url === "/config.json") {
        res.writeHead(200, { "Content-Type": "application/json" })
          .end(JSON.stringify({ apiUrl: system.apiUrl, realtimeUrls: liveRealtimeUrls(), token }));
      } else {
        res.writeHead(200, { "Content-Type": "text/html" }).end(page);
      }
    });
    await new Promise<void>((r) => server.listen(Number(origin.port), origin.hostname, r));
    const browser = await chromium.launch({ executablePath: system.chromium, args: ["--no-sandbox"] });
    try {
      const tab = await browser.newPage();
      const consoleLines: string[] = [];
      tab.on("console", (m) => consoleLines.push(m.text()));
      tab.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
      await tab.goto(system.browserOrigin);
      await tab.waitForFunction(() => (window as any).cotex?.states?.includes("live"), null, { timeout: 20_000 }).catch((e) => {
        throw new Error(`the page's feed did not go live: ${e.message}\n${consoleLines.join("\n")}`);
      });
      expect(await tab.evaluate(() => (window as any).cotex.repos)).toEqual([user.repo.fullName]);

      const delivered = await deliver(user.repo, "issues", await payload("issues/opened.payload.json", user.repo.fullName));
      await tab.waitForFunction(() => (window as any).cotex.events.length > 0, null, { timeout: 20_000 });
      const events = (await tab.evaluate(() => (window as any).cotex.events)) as GitHubEventSummary[];
      expect(events.map((e) => [e.id, e.position, e.type, e.repoFullName])).toEqual([[delivered.id, delivered.position, "issues", user.repo.fullName]]);
      expect(await tab.evaluate(() => (window as any).cotex.errors)).toEqual([]);
    } finally {
      await browser.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 90_000);

  it("a replica killed mid-stream: the feed moves to the other one with 0 lost, 0 duplicated, order kept", async () => {
    expect(liveRealtimeUrls().length, "needs two replicas").toBeGreaterThanOrEqual(2);
    const user = await newUser();
    const { feed, received, errors, connectedTo } = watch(user, { fromPosition: 0 });
    feed.start();
    await eventually(() => feed.state === "live", "live");

    const body = await payload("issues/opened.payload.json", user.repo.fullName);
    const delivered: Delivered[] = [];
    let killedPid: number | undefined;
    let receivedAtKill = 0;
    const total = 600;
    let sent = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (sent < total) {
          sent++;
          delivered.push(await deliver(user.repo, "issues", body));
          if (killedPid === undefined && received.length >= 100) {
            receivedAtKill = received.length;
            killedPid = killReplica(connectedTo.at(-1)!);
          }
        }
      }),
    );
    delivered.sort((a, b) => a.position - b.position);
    await eventually(() => received.length >= total, `${total} events`, 60_000);
    await new Promise((r) => setTimeout(r, 500)); // anything extra (a duplicate) would arrive now

    expect(killedPid, "a replica was killed while events flowed").toBeDefined();
    expect(new Set(connectedTo).size, "moved to the other replica").toBe(2);
    expect(errors.some((e) => e instanceof ConnectionError)).toBe(true);
    expect(received.length).toBe(total);
    expectExactly(received, delivered);
    console.log(`replica loss: killed pid ${killedPid} (its feed had ${receivedAtKill} of ${total} events, the rest still being delivered); ${feed.stats.duplicatesDropped} resent events dropped; connections: ${connectedTo.join(" → ")}`);
    await feed.close();
  }, 120_000);
});

import { afterEach, describe, expect, it } from "vitest";
import {
  AccountClosedError,
  CoTeXFeed,
  ConnectionError,
  TokenProviderError,
  TokenRejectedError,
  type CoTeXError,
  type FeedItem,
  type FeedOptions,
  type FeedState,
  type GitHubEventSummary,
} from "../../src/index.js";
import { FakeHub, summary, waitFor } from "./fake-hub.js";

const feeds: CoTeXFeed[] = [];
afterEach(async () => {
  await Promise.all(feeds.splice(0).map((f) => f.close()));
});

function newFeed(hub: FakeHub, options: Partial<FeedOptions> = {}): CoTeXFeed {
  let tokens = 0;
  const feed = new CoTeXFeed({
    realtimeUrls: ["http://a.test", "http://b.test"],
    accessToken: () => `token-${++tokens}`,
    connectionFactory: hub.factory,
    backoff: { initialDelayMs: 5, maxDelayMs: 20 },
    // No server to ask why a connection failed: every failure is a plain connection error.
    fetch: () => Promise.reject(new Error("offline")),
    onlineEvents: null,
    ...options,
  });
  feeds.push(feed);
  return feed;
}

function record(feed: CoTeXFeed) {
  const events: GitHubEventSummary[] = [];
  const errors: CoTeXError[] = [];
  const states: FeedState[] = [];
  feed.on("event", (e) => events.push(e));
  feed.on("error", (e) => errors.push(e));
  feed.on("state", (s) => states.push(s));
  return { events, errors, states };
}

describe("CoTeXFeed: order and each event once", () => {
  it("hands over each position once, in order, across a reconnect that resends from an older position", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { fromPosition: 0 });
    const { events } = record(feed);
    feed.start();

    const first = await hub.subscribed(1);
    expect(first.subscribedFrom).toBe(0);
    first.send("Events", [summary(1), summary(2), summary(3)]);
    first.send("CaughtUp", { position: 3 });
    first.send("Event", summary(4));
    first.send("Event", summary(4)); // the same live event twice
    first.close(new Error("socket dropped"));

    const second = await hub.subscribed(2);
    expect(second.subscribedFrom, "resumes from the highest position held").toBe(4);
    // A server that resends older positions (or a live message that raced the catch-up): all dropped.
    second.send("Events", [summary(2), summary(3), summary(4), summary(5)]);
    second.send("Event", summary(3));
    second.send("Event", summary(6));

    await waitFor(() => events.length === 6);
    expect(events.map((e) => e.position)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(feed.stats.duplicatesDropped).toBe(5);
    expect(feed.position).toBe(6);
  });

  it("ignores what a connection it has already left behind still delivers", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { fromPosition: 10 });
    const { events } = record(feed);
    feed.start();
    const first = await hub.subscribed(1);
    first.send("Reconnect", { reason: "shutting down", code: "shutdown" });
    const second = await hub.subscribed(2);
    first.send("Event", summary(11)); // late, from the old socket
    second.send("Event", summary(11));
    await waitFor(() => events.length === 1);
    expect(events.map((e) => e.position)).toEqual([11]);
  });

  it("moves the position to CaughtUp's (events of paused repos are never sent) and goes live", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { fromPosition: 5 });
    const { states } = record(feed);
    feed.start();
    const connection = await hub.subscribed();
    connection.send("Events", [summary(6), summary(8)]);
    connection.send("CaughtUp", { position: 12 });
    expect(feed.position).toBe(12);
    expect(feed.state).toBe("live");
    expect(states).toEqual(["connecting", "catching_up", "live"]);
  });

  it("starts with new events only when no position was ever saved", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { loadPosition: () => undefined });
    feed.start();
    expect((await hub.subscribed()).subscribedFrom).toBeNull();
  });
});

describe("CoTeXFeed: reconnecting", () => {
  it("asks for a token for every attempt and resumes on the next URL when the server asks to reconnect", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { fromPosition: 1 });
    const notices: string[] = [];
    feed.on("reconnectRequested", (n) => notices.push(n.code ?? ""));
    feed.start();
    const first = await hub.subscribed(1);
    first.send("Event", summary(2));
    first.send("Reconnect", { reason: "expired", code: "token_expired" });
    const second = await hub.subscribed(2);

    expect(notices).toEqual(["token_expired"]);
    expect([first.token, second.token]).toEqual(["token-1", "token-2"]);
    expect([first.hubUrl, second.hubUrl]).toEqual(["http://a.test/ws", "http://b.test/ws"]);
    expect(second.subscribedFrom).toBe(2);
  });

  it("fails over to the next URL at once and backs off only when every URL failed", async () => {
    const hub = new FakeHub();
    hub.refuse.add("http://a.test/ws");
    hub.refuse.add("http://b.test/ws");
    const feed = newFeed(hub, { fromPosition: 0, backoff: { initialDelayMs: 40, maxDelayMs: 40 } });
    const { errors, states } = record(feed);
    feed.start();
    await waitFor(() => hub.connections.length >= 2);
    // Both URLs tried back to back, then a wait (offline) before the next round.
    expect(states.slice(0, 2)).toEqual(["connecting", "offline"]); // connecting twice: no state change between
    expect(hub.connections.map((c) => c.hubUrl)).toEqual(["http://a.test/ws", "http://b.test/ws"]);
    hub.refuse.delete("http://a.test/ws");
    const connection = await hub.subscribed();
    expect(connection.hubUrl).toBe("http://a.test/ws");
    expect(errors.every((e) => e instanceof ConnectionError)).toBe(true);
    expect(errors.length).toBe(2);
  });

  it("disconnects while offline and reconnects as soon as the network is back", async () => {
    const hub = new FakeHub();
    const network = new EventTarget();
    const feed = newFeed(hub, { fromPosition: 3, onlineEvents: network });
    feed.start();
    const first = await hub.subscribed(1);
    network.dispatchEvent(new Event("offline"));
    await waitFor(() => feed.state === "offline");
    expect(first.closed).toBe(true);
    await new Promise((r) => setTimeout(r, 30));
    expect(hub.connections.length, "no attempt while offline").toBe(1);
    network.dispatchEvent(new Event("online"));
    const second = await hub.subscribed(2);
    expect(second.subscribedFrom).toBe(3);
  });

  it("pause() and resume() do the same for apps that know better (Electron's powerMonitor)", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { fromPosition: 3 });
    feed.start();
    await hub.subscribed(1);
    feed.pause();
    await waitFor(() => feed.state === "offline");
    feed.resume();
    await hub.subscribed(2);
  });
});

describe("CoTeXFeed: refusals", () => {
  const problemFetch = (detail: string) => (() =>
    Promise.resolve(
      new Response(JSON.stringify({ status: 401, title: "Unauthorized", detail }), {
        status: 401,
        headers: { "Content-Type": "application/problem+json" },
      }),
    )) as unknown as typeof fetch;

  it("reports a rejected token as TokenRejectedError, asks for a new one, and ends after maxTokenRejections", async () => {
    const hub = new FakeHub();
    hub.refuse.add("http://a.test/ws");
    hub.refuse.add("http://b.test/ws");
    const feed = newFeed(hub, {
      fetch: problemFetch("The access token was rejected: it has expired."),
      maxTokenRejections: 3,
    });
    const { errors } = record(feed);
    let closedWith: CoTeXError | undefined;
    feed.on("closed", (e) => (closedWith = e));
    feed.start();
    await waitFor(() => feed.state === "closed");
    expect(hub.connections.map((c) => c.token)).toEqual(["token-1", "token-2", "token-3"]);
    expect(closedWith).toBeInstanceOf(TokenRejectedError);
    expect((closedWith as TokenRejectedError).status).toBe(401);
    expect(errors.filter((e) => e instanceof TokenRejectedError).length).toBeGreaterThanOrEqual(3);
  });

  it("ends at once with AccountClosedError when the account is closed, and the iterator throws it", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, {
      fromPosition: 1,
      fetch: problemFetch("The access token was rejected: The token's account has been deleted."),
    });
    const received: FeedItem[] = [];
    const reading = (async () => {
      for await (const item of feed) received.push(item);
    })();
    const connection = await hub.subscribed();
    connection.send("Event", summary(2));
    hub.refuse.add("http://a.test/ws");
    hub.refuse.add("http://b.test/ws");
    connection.close(undefined); // the server closes a closed account's connections

    await expect(reading).rejects.toBeInstanceOf(AccountClosedError);
    expect(received.map((i) => (i.type === "event" ? i.event.position : -1))).toEqual([2]);
    expect(feed.state).toBe("closed");
    expect(hub.connections.length, "no retry after the account closed").toBe(2);
  });

  it("ends with TokenProviderError when the app's accessToken throws", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, {
      accessToken: () => {
        throw new Error("signed out");
      },
    });
    const iterator = feed[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toBeInstanceOf(TokenProviderError);
    expect((feed.error?.cause as Error).message).toBe("signed out");
  });
});

describe("CoTeXFeed: iterator, reset and the saved position", () => {
  it("yields events and resets in order, and saves a position only once the consumer has moved past it", async () => {
    const hub = new FakeHub();
    const saved: number[] = [];
    const feed = newFeed(hub, {
      loadPosition: async () => 100,
      savePosition: (p) => void saved.push(p),
    });
    const iterator = feed[Symbol.asyncIterator]();
    const connection = await hub.subscribed();
    expect(connection.subscribedFrom).toBe(100);
    connection.send("Events", [summary(101), summary(102)]);
    connection.send("CaughtUp", { position: 105 });

    const first = await iterator.next();
    expect(first.value).toMatchObject({ type: "event", event: { position: 101 } });
    expect(saved, "nothing handled yet").toEqual([]);
    await iterator.next(); // 102 handed over: 101 handled
    await waitFor(() => saved.at(-1) === 101);

    connection.send("Reset", { position: 90, reason: "history before it is gone" });
    const reset = await iterator.next(); // 102 handled, CaughtUp's 105 passed, then the reset
    expect(reset.value).toEqual({ type: "reset", position: 90, reason: "history before it is gone" });
    connection.send("Event", summary(91));
    expect((await iterator.next()).value).toMatchObject({ type: "event", event: { position: 91 } });
    await feed.close();
    await feed.flush();
    // 91 was handed out but the consumer never came back for more: not saved. The reset's 90 was saved only once
    // the consumer came back after it (having reloaded history), never the 105 that preceded it.
    expect(saved).toEqual([101, 90]);
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  it("with listeners only, saves as soon as they have run; a throwing listener does not stop the feed", async () => {
    const hub = new FakeHub();
    const saved: number[] = [];
    const feed = newFeed(hub, { fromPosition: 0, savePosition: async (p) => void saved.push(p) });
    const positions: number[] = [];
    feed.on("event", (e) => {
      positions.push(e.position);
      if (e.position === 2) throw new Error("app bug");
    });
    const resets: number[] = [];
    feed.on("reset", (r) => resets.push(r.position));
    feed.start();
    const connection = await hub.subscribed();
    const swallowed = new Promise((resolve) => process.once("uncaughtException", resolve));
    connection.send("Events", [summary(1), summary(2), summary(3)]);
    await swallowed;
    connection.send("Reset", { position: 2, reason: "x" });
    await feed.flush();
    expect(positions).toEqual([1, 2, 3]);
    expect(resets).toEqual([2]);
    expect(saved.at(-1)).toBe(2);
  });

  it("close() ends every iterator and stops connecting", async () => {
    const hub = new FakeHub();
    const feed = newFeed(hub, { fromPosition: 0 });
    const reading = (async () => {
      const items: FeedItem[] = [];
      for await (const item of feed) items.push(item);
      return items;
    })();
    const connection = await hub.subscribed();
    connection.send("Event", summary(1));
    await feed.close();
    expect((await reading).length).toBe(1);
    expect(connection.closed).toBe(true);
    expect(feed.state).toBe("closed");
    expect(feed.error).toBeUndefined();
  });
});

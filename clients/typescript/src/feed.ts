import { HttpTransportType, HubConnectionBuilder, LogLevel, type ILogger } from "@microsoft/signalr";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { TypedEmitter } from "./emitter.js";
import {
  AccountClosedError,
  CoTeXError,
  ConnectionError,
  TokenProviderError,
  TokenRejectedError,
  problemError,
  readProblem,
} from "./errors.js";
import {
  ClientMethod,
  HUB_PATH,
  ServerMessage,
  type FeedPosition,
  type FeedReset,
  type GitHubEventSummary,
  type ReconnectNotice,
} from "./generated/hub.js";

/**
 * Where the feed is.
 * - `idle`: created, not started.
 * - `connecting`: a connection attempt is under way.
 * - `catching_up`: connected and subscribed; the server is sending what was missed.
 * - `live`: everything missed has arrived (`CaughtUp` or `Reset`); events arrive as they are stored.
 * - `offline`: not connected and waiting: after a failed attempt (backoff), while the browser is offline, or paused.
 * - `closed`: ended by {@link CoTeXFeed.close} or by a final error ({@link CoTeXFeed.error}).
 */
export type FeedState = "idle" | "connecting" | "catching_up" | "live" | "offline" | "closed";

/** What the async iterator yields: an event, or the server's word that history before a position is gone. */
export type FeedItem =
  | { type: "event"; event: GitHubEventSummary }
  | {
      /**
       * The position asked for cannot be resumed (older than the retention window, or from another server): reload
       * the user's history over REST (`client.events.all()`, everything up to `position`), then keep consuming: live
       * events continue after `position`.
       */
      type: "reset";
      position: number;
      reason: string;
    };

/** The subset of `@microsoft/signalr`'s `HubConnection` the feed uses (a seam for tests). */
export interface HubConnectionLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  invoke(methodName: string, ...args: unknown[]): Promise<unknown>;
  on(methodName: string, handler: (...args: any[]) => void): void;
  onclose(callback: (error?: Error) => void): void;
}

export interface FeedOptions {
  /**
   * The Realtime service's base URL(s), e.g. `https://realtime.example.com`. With several (replicas without a load
   * balancer), each connection attempt takes the next one.
   */
  realtimeUrls: string | readonly string[];
  /**
   * The user's Supabase access token, asked for every connection attempt (never cached here): return one that is
   * valid now, refreshing the session when it is close to expiry. Throwing ends the feed with a
   * {@link TokenProviderError}.
   */
  accessToken: () => string | Promise<string>;
  /**
   * The position to resume from, as last saved by `savePosition` (`null`/`undefined`: start with new events only).
   * Called once, when the feed starts. Ignored when `fromPosition` is given.
   */
  loadPosition?: () => number | null | undefined | Promise<number | null | undefined>;
  /** Resume from this position instead of calling `loadPosition`. */
  fromPosition?: number | null;
  /**
   * Persist the position (e.g. to a file or `localStorage`) so a restarted app resumes where it stopped. Called with
   * the highest position the app has been handed everything up to: listeners have returned, and every open iterator
   * has come back for the next item. Calls are never concurrent; while one runs, later positions are coalesced.
   */
  savePosition?: (position: number) => void | Promise<void>;
  /** Reconnect delays (jittered exponential backoff with a cap). */
  backoff?: BackoffOptions;
  /** 401s in a row (each with a new token from `accessToken`) after which the feed ends with {@link TokenRejectedError}. Default 5. */
  maxTokenRejections?: number;
  /**
   * Where `online`/`offline` events come from: the feed disconnects while offline and reconnects at once when back.
   * Default: `window` in a browser or Electron renderer; nothing in Node (call `pause()`/`resume()` yourself).
   * `null` disables it.
   */
  onlineEvents?: EventTarget | null;
  /** SignalR's own log level or logger. Default: silent (the feed reports what matters through `error`). */
  signalRLogging?: LogLevel | ILogger;
  /** Ends the feed when aborted, like {@link CoTeXFeed.close}. */
  signal?: AbortSignal;
  /** `fetch` used to learn why the server refused a connection. Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Builds a hub connection (default: `@microsoft/signalr`, WebSockets without negotiation). For tests. */
  connectionFactory?: (hubUrl: string, accessToken: () => string) => HubConnectionLike;
}

export interface FeedEvents {
  /** An event, in position order, each once. */
  event: (event: GitHubEventSummary) => void;
  /** Everything missed up to `position` has arrived; live from here. */
  caughtUp: (position: number) => void;
  /** History before `reset.position` cannot be resumed: reload it over REST (see {@link FeedItem}). */
  reset: (reset: FeedReset) => void;
  state: (state: FeedState, previous: FeedState) => void;
  /** Connected and subscribed to `url`. */
  connected: (url: string) => void;
  /** The server asked this client to reconnect (`shutdown`, `feed_failed`, `rebalance`, `token_expired`); the feed does so itself. */
  reconnectRequested: (notice: ReconnectNotice) => void;
  /**
   * Something went wrong: a failed attempt or a dropped connection ({@link ConnectionError}), a refused token
   * ({@link TokenRejectedError}); the feed carries on. A final error ({@link AccountClosedError},
   * {@link TokenProviderError}, too many rejections) is reported here too, then `closed`.
   */
  error: (error: CoTeXError) => void;
  /** The feed has ended: `error` is why, or undefined after {@link CoTeXFeed.close}. */
  closed: (error: CoTeXError | undefined) => void;
}

/** Counters for diagnostics and tests. */
export interface FeedStats {
  /** Events handed to the app. */
  delivered: number;
  /** Events dropped because their position was at or below the one held (resends after a reconnect). */
  duplicatesDropped: number;
  /** Connections that subscribed. */
  connections: number;
  /** Failed attempts and dropped connections. */
  failures: number;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

type QueueEntry = { kind: "item"; item: FeedItem; position: number } | { kind: "mark"; position: number };

/** One open async iterator's queue and how far its consumer has got. */
class IteratorQueue {
  readonly entries: QueueEntry[] = [];
  waiter: Deferred<void> | undefined;
  /** The position of the item handed out last, acknowledged when the consumer asks for the next one. */
  pending: number | undefined;
  /** Resets waiting in the queue: until the consumer has handled them, nothing is saved. */
  resetsQueued = 0;
  /** What the consumer has handled everything up to; null: nothing may be saved for it yet. */
  constructor(public consumed: number | null) {}

  push(entry: QueueEntry): void {
    this.entries.push(entry);
    this.waiter?.resolve();
    this.waiter = undefined;
  }
}

const SILENT: ILogger = { log: () => {} };

/**
 * The user's GitHub events in real time from CoTeX's Realtime service: in position order, each once, across
 * reconnects, replica loss and token expiry; resumed from the position the app saved.
 *
 * ```ts
 * const feed = new CoTeXFeed({ realtimeUrls, accessToken, loadPosition, savePosition });
 * for await (const item of feed) {
 *   if (item.type === "event") show(item.event);
 *   else await reloadHistory(item.position); // "reset": history before it is gone
 * }
 * ```
 *
 * Or with listeners: `feed.on("event", show); feed.on("reset", reload); feed.start();`.
 */
export class CoTeXFeed extends TypedEmitter<FeedEvents> implements AsyncIterable<FeedItem> {
  private readonly urls: readonly string[];
  private readonly options: FeedOptions;
  private readonly iterators = new Set<IteratorQueue>();
  private readonly onlineTarget: EventTarget | null;
  private _state: FeedState = "idle";
  private _position: number | null = null;
  private _error: CoTeXError | undefined;
  private run: Promise<void> | undefined;
  private current: HubConnectionLike | undefined;
  private currentEnded: Deferred<Error | undefined> | undefined;
  private wake = deferred();
  private pausedByApp = false;
  private offline = false;
  private closing = false;
  private urlIndex = 0;
  private saved: number | null = null;
  private saving: Promise<void> | undefined;
  private readonly removeListeners: (() => void)[] = [];
  readonly stats: FeedStats = { delivered: 0, duplicatesDropped: 0, connections: 0, failures: 0 };

  constructor(options: FeedOptions) {
    super();
    const urls = typeof options.realtimeUrls === "string" ? [options.realtimeUrls] : [...options.realtimeUrls];
    if (urls.length === 0) {
      throw new TypeError("realtimeUrls: give at least one Realtime URL");
    }
    this.urls = urls;
    this.options = options;
    this.onlineTarget =
      options.onlineEvents !== undefined
        ? options.onlineEvents
        : typeof window !== "undefined" && typeof window.addEventListener === "function"
          ? window
          : null;
  }

  /** Where the feed is (see {@link FeedState}). */
  get state(): FeedState {
    return this._state;
  }

  /** The highest position received (null before the first event or `CaughtUp` when starting with new events only). */
  get position(): number | null {
    return this._position;
  }

  /** The error that ended the feed, if one did. */
  get error(): CoTeXError | undefined {
    return this._error;
  }

  /** Starts connecting (iterating starts it too). Listeners added before this see everything. */
  start(): this {
    if (!this.run && !this.closing) {
      this.run = this.runLoop();
    }
    return this;
  }

  /** Disconnects and stays offline until {@link resume} (e.g. from Electron's `powerMonitor` "suspend"). */
  pause(): void {
    this.pausedByApp = true;
    this.interrupt();
  }

  /** Reconnects at once after {@link pause}, without waiting for a backoff delay. */
  resume(): void {
    this.pausedByApp = false;
    this.interrupt();
  }

  /** Ends the feed: disconnects, saves the position, ends every iterator. */
  async close(): Promise<void> {
    this.closing = true;
    this.interrupt();
    if (!this.run) {
      this.finish(undefined);
    } else {
      await this.run;
    }
    await this.flush();
  }

  /** Events (and resets) as they arrive; starts the feed. Ends when the feed is closed, throws the error that ended it. */
  [Symbol.asyncIterator](): AsyncIterator<FeedItem> {
    const queue = new IteratorQueue(this._position);
    this.iterators.add(queue);
    this.start();
    const release = (): void => {
      this.iterators.delete(queue);
      this.acknowledge();
    };
    return {
      next: async (): Promise<IteratorResult<FeedItem>> => {
        if (queue.pending !== undefined) {
          queue.consumed = queue.pending;
          queue.pending = undefined;
        }
        for (;;) {
          const entry = queue.entries.shift();
          if (entry?.kind === "mark") {
            queue.consumed = entry.position;
            continue;
          }
          if (entry) {
            if (entry.item.type === "reset") {
              queue.resetsQueued--;
              queue.consumed = null;
            }
            queue.pending = entry.position;
            this.acknowledge();
            return { value: entry.item, done: false };
          }
          this.acknowledge();
          if (this._state === "closed" || !this.iterators.has(queue)) {
            release();
            if (this._error) {
              throw this._error;
            }
            return { value: undefined, done: true };
          }
          queue.waiter = deferred();
          await queue.waiter.promise;
        }
      },
      return: async (): Promise<IteratorResult<FeedItem>> => {
        release();
        return { value: undefined, done: true };
      },
    };
  }

  // ---- the connection loop -------------------------------------------------------------------------------------

  private async runLoop(): Promise<void> {
    const signal = this.options.signal;
    const onAbort = (): void => void this.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.listenForOnline();
    try {
      if (signal?.aborted) {
        return this.finish(undefined);
      }
      this._position = await this.initialPosition();
      this.saved = this._position;
      for (const queue of this.iterators) queue.consumed = this._position;
      await this.connectLoop();
      this.finish(undefined);
    } catch (error) {
      this.finish(error instanceof CoTeXError ? error : new CoTeXError(`The feed failed: ${String(error)}`, { cause: error }));
    } finally {
      signal?.removeEventListener("abort", onAbort);
      for (const remove of this.removeListeners) remove();
    }
  }

  private async initialPosition(): Promise<number | null> {
    if (this.options.fromPosition !== undefined) {
      return this.options.fromPosition;
    }
    const loaded = await this.options.loadPosition?.();
    return loaded ?? null;
  }

  private async connectLoop(): Promise<void> {
    let failuresInRound = 0; // attempts that failed since the last good connection, across URLs
    let failedRounds = 0; // rounds (every URL tried) that failed in a row
    let rejections = 0;
    const maxRejections = this.options.maxTokenRejections ?? 5;

    while (!this.closing) {
      if (this.pausedByApp || this.offline) {
        this.setState("offline");
        await this.sleep(undefined);
        failuresInRound = failedRounds = 0;
        continue;
      }

      const url = this.urls[this.urlIndex++ % this.urls.length]!;
      this.setState("connecting");
      const outcome = await this.connectOnce(url);
      if (this.closing) {
        break;
      }

      if (outcome.kind === "lived") {
        rejections = 0;
        if (outcome.error) {
          this.stats.failures++;
          this.emit("error", new ConnectionError(`The connection to ${url} dropped: ${outcome.error.message}`, url, outcome.error));
        }
        // A connection that never caught up counts as a failure, so a replica that drops every connection at once is
        // not retried in a tight loop; one that did (token expiry, a replica's shutdown) reconnects at once.
        if (outcome.caughtUp) {
          failuresInRound = failedRounds = 0;
          continue;
        }
      } else {
        this.stats.failures++;
        const error = outcome.error;
        if (error instanceof AccountClosedError) {
          throw error;
        }
        if (error instanceof TokenRejectedError) {
          rejections++;
          this.emit("error", error);
          if (rejections >= maxRejections) {
            throw error;
          }
        } else {
          this.emit("error", error);
        }
      }

      failuresInRound++;
      if (failuresInRound >= this.urls.length) {
        // Every URL failed in a row: back off before the next round.
        failuresInRound = 0;
        failedRounds++;
        this.setState("offline");
        await this.sleep(backoffDelay(failedRounds, this.options.backoff));
      }
    }
  }

  /**
   * One connection: connect, subscribe from the position held, and deliver until it ends. "lived" once subscribed;
   * "failed" (with a typed error) when it could not get that far.
   */
  private async connectOnce(url: string): Promise<
    | { kind: "lived"; caughtUp: boolean; error: Error | undefined }
    | { kind: "failed"; error: ConnectionError | TokenRejectedError | AccountClosedError }
  > {
    let token: string;
    try {
      token = await this.options.accessToken();
    } catch (error) {
      throw new TokenProviderError(`accessToken threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (this.closing) {
      return { kind: "lived", caughtUp: true, error: undefined };
    }

    const hubUrl = joinUrl(url, HUB_PATH);
    const connection = (this.options.connectionFactory ?? this.defaultConnection)(hubUrl, () => token);
    const ended = deferred<Error | undefined>();
    let caughtUp = false;
    const isCurrent = (): boolean => this.current === connection;

    connection.onclose((error) => ended.resolve(error));
    connection.on(ServerMessage.Events, (batch: GitHubEventSummary[]) => {
      if (isCurrent()) this.acceptBatch(batch);
    });
    connection.on(ServerMessage.Event, (summary: GitHubEventSummary) => {
      if (isCurrent()) this.acceptBatch([summary]);
    });
    connection.on(ServerMessage.CaughtUp, (message: FeedPosition) => {
      if (!isCurrent()) return;
      caughtUp = true;
      this.caughtUp(message.position);
    });
    connection.on(ServerMessage.Reset, (message: FeedReset) => {
      if (!isCurrent()) return;
      caughtUp = true;
      this.reset(message);
    });
    connection.on(ServerMessage.Reconnect, (notice: ReconnectNotice) => {
      if (!isCurrent()) return;
      this.emit("reconnectRequested", notice);
      ended.resolve(undefined); // the server is about to close it: move on now
    });

    this.current = connection;
    this.currentEnded = ended;
    try {
      try {
        await Promise.race([connection.start(), ended.promise.then((e) => Promise.reject(e ?? new Error("closed")))]);
      } catch (error) {
        if (this.closing || this.pausedByApp || this.offline) {
          return { kind: "lived", caughtUp: true, error: undefined };
        }
        return { kind: "failed", error: await this.explainRefusal(url, hubUrl, token, error) };
      }
      this.setState("catching_up");
      try {
        await connection.invoke(ClientMethod.Subscribe, this._position);
      } catch (error) {
        if (this.closing || this.pausedByApp || this.offline) {
          return { kind: "lived", caughtUp: true, error: undefined };
        }
        return { kind: "failed", error: new ConnectionError(`Subscribe failed on ${url}: ${messageOf(error)}`, url, error) };
      }
      this.stats.connections++;
      this.emit("connected", url);
      const error = await ended.promise;
      return { kind: "lived", caughtUp, error: this.closing || this.pausedByApp || this.offline ? undefined : error };
    } finally {
      this.current = undefined;
      this.currentEnded = undefined;
      await connection.stop().catch(() => {});
    }
  }

  private readonly defaultConnection = (hubUrl: string, accessToken: () => string): HubConnectionLike =>
    new HubConnectionBuilder()
      .withUrl(hubUrl, {
        // WebSockets without the negotiate round trip: the connection is one socket, so any replica can serve it and
        // a load balancer needs no sticky sessions.
        skipNegotiation: true,
        transport: HttpTransportType.WebSockets,
        accessTokenFactory: accessToken,
      })
      .configureLogging(this.options.signalRLogging ?? SILENT)
      .build();

  /**
   * Why a connection attempt failed. A WebSocket refused at the upgrade tells the client nothing (a browser gives no
   * status at all), so the feed asks the hub once over plain HTTP with the same token: a 401 carries the server's
   * ProblemDetails (token rejected, or the account is closed).
   */
  private async explainRefusal(url: string, hubUrl: string, token: string, failure: unknown): Promise<ConnectionError | TokenRejectedError | AccountClosedError> {
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl === "function") {
      try {
        const response = await fetchImpl(hubUrl, {
          headers: { Authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(5_000),
        });
        if (response.status === 401) {
          const error = problemError({
            status: 401,
            problem: await readProblem(response),
            request: `GET ${hubUrl}`,
            requestId: response.headers.get("X-Request-Id") ?? undefined,
          });
          if (error instanceof TokenRejectedError || error instanceof AccountClosedError) {
            return error;
          }
        } else {
          await response.body?.cancel().catch(() => {});
        }
      } catch {
        // unreachable too: the original failure says it
      }
    }
    return new ConnectionError(`Could not connect to ${url}: ${messageOf(failure)}`, url, failure);
  }

  // ---- delivery ------------------------------------------------------------------------------------------------

  /** Passes on each event above the position held, in order; drops the rest (resends after a reconnect). */
  private acceptBatch(batch: readonly GitHubEventSummary[]): void {
    for (const summary of batch) {
      if (this._position !== null && summary.position <= this._position) {
        this.stats.duplicatesDropped++;
        continue;
      }
      this._position = summary.position;
      this.stats.delivered++;
      if (this.iterators.size > 0) {
        const entry: QueueEntry = { kind: "item", item: { type: "event", event: summary }, position: summary.position };
        for (const queue of this.iterators) queue.push(entry);
      }
      this.emit("event", summary);
    }
    this.acknowledge();
  }

  private caughtUp(position: number): void {
    // Positions of paused or deleted repos are never sent; CaughtUp moves past them.
    if (this._position === null || position > this._position) {
      this._position = position;
      for (const queue of this.iterators) queue.push({ kind: "mark", position });
    }
    this.setState("live");
    this.emit("caughtUp", position);
    this.acknowledge();
  }

  private reset(message: FeedReset): void {
    this._position = message.position;
    const entry: QueueEntry = {
      kind: "item",
      item: { type: "reset", position: message.position, reason: message.reason },
      position: message.position,
    };
    for (const queue of this.iterators) {
      // Nothing is saved for this consumer until it has taken the reset and come back (having reloaded history).
      queue.resetsQueued++;
      queue.push(entry);
    }
    this.setState("live");
    this.emit("reset", message);
    this.acknowledge();
  }

  /** Saves the position everything has been handed over up to (listeners have run; iterators have moved past it). */
  private acknowledge(): void {
    if (!this.options.savePosition || this._position === null) {
      return;
    }
    let position: number = this._position;
    for (const queue of this.iterators) {
      if (queue.consumed === null || queue.resetsQueued > 0) return;
      position = Math.min(position, queue.consumed);
    }
    if (position === this.saved) {
      return;
    }
    this.saved = position;
    if (!this.saving) {
      this.saving = this.saveLoop();
    }
  }

  private async saveLoop(): Promise<void> {
    let written: number | null = null;
    try {
      while (this.saved !== null && this.saved !== written) {
        written = this.saved;
        try {
          await this.options.savePosition!(written);
        } catch (error) {
          this.emit("error", new CoTeXError(`savePosition(${written}) threw: ${messageOf(error)}`, { cause: error }));
        }
      }
    } finally {
      this.saving = undefined;
    }
  }

  // ---- state, waiting, ending -------------------------------------------------------------------------------------

  private setState(state: FeedState): void {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this.emit("state", state, previous);
  }

  /** Stops the current connection and wakes a sleeping loop (close, pause, resume, online, offline). */
  private interrupt(): void {
    this.currentEnded?.resolve(undefined);
    void this.current?.stop().catch(() => {});
    const wake = this.wake;
    this.wake = deferred();
    wake.resolve();
  }

  /** Waits `ms` (or until woken when undefined), or until interrupted. */
  private async sleep(ms: number | undefined): Promise<void> {
    const wake = this.wake.promise;
    if (ms === undefined) {
      await wake;
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([wake, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  private listenForOnline(): void {
    const target = this.onlineTarget;
    if (!target) return;
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    if (target === globalThis.window && nav?.onLine === false) {
      this.offline = true;
    }
    const onOffline = (): void => {
      this.offline = true;
      this.interrupt();
    };
    const onOnline = (): void => {
      this.offline = false;
      this.interrupt();
    };
    target.addEventListener("offline", onOffline);
    target.addEventListener("online", onOnline);
    this.removeListeners.push(
      () => target.removeEventListener("offline", onOffline),
      () => target.removeEventListener("online", onOnline),
    );
  }

  private finish(error: CoTeXError | undefined): void {
    if (this._state === "closed") return;
    this._error = error;
    this.closing = true;
    if (error) {
      this.emit("error", error);
    }
    this.setState("closed");
    for (const queue of this.iterators) {
      queue.waiter?.resolve();
      queue.waiter = undefined;
    }
    this.acknowledge();
    this.emit("closed", error);
  }

  /** Resolves once a pending `savePosition` call (if any) has finished. */
  async flush(): Promise<void> {
    while (this.saving) {
      await this.saving;
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `base` + `path`, keeping any path `base` has (a Realtime service behind a path prefix). */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, "") + path;
}

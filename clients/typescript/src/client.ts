import type { components } from "./generated/api.js";
import { CoTeXFeed, type FeedOptions } from "./feed.js";
import {
  NetworkError,
  TokenProviderError,
  newRequestId,
  problemError,
  readProblem,
  retryAfterSeconds,
} from "./errors.js";

type Schemas = components["schemas"];

export type CreateRepoRequest = Schemas["CreateRepoRequest"];
export type CreatedRepo = Schemas["CreatedRepo"];
export type TrackedRepo = Schemas["TrackedRepo"];
export type RepoList = Schemas["RepoList"];
export type PlanUsage = Schemas["PlanUsage"];
export type RotatedSecret = Schemas["RotatedSecret"];
export type GitHubEventPage = Schemas["GitHubEventPage"];
export type GitHubEventDetail = Schemas["GitHubEventDetail"];
export type RecentGitHubEvents = Schemas["RecentGitHubEvents"];
export type BillingSummary = Schemas["BillingSummary"];
export type GitHubAppStatus = Schemas["GitHubAppStatus"];
export type GitHubConnectStart = Schemas["GitHubConnectStart"];
/** An event as the REST list returns it (the same shape as the hub's `GitHubEventSummary`). */
export type GitHubEventListItem = GitHubEventPage["items"][number];

export interface ClientOptions {
  /** The Api's base URL, e.g. `https://api.example.com`. */
  apiUrl: string;
  /** The Realtime service's base URL(s), for {@link CoTeXClient.feed}. */
  realtimeUrls?: string | readonly string[];
  /**
   * The user's Supabase access token, asked for every request and every feed connection attempt (never cached here):
   * return the session's current token, refreshed when close to expiry.
   */
  accessToken: () => string | Promise<string>;
  /** Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export interface EventQuery {
  /** Only this tracked repo's events. */
  repoId?: string;
  /** Only this GitHub event type (`push`, `pull_request`, ...). */
  type?: string;
  /** Page size, 1-100 (server default 50). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * The CoTeX REST API and the realtime feed, for one signed-in user.
 *
 * Every call sends a fresh `X-Request-Id` (also on the error it may throw, and in the server's logs). Errors are typed:
 * {@link ProblemError} for an error answer (its `problem` is the server's ProblemDetails), with the subclasses
 * {@link TokenRejectedError} (401) and {@link AccountClosedError}; {@link NetworkError} when no answer came.
 */
export class CoTeXClient {
  private readonly apiUrl: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.apiUrl = options.apiUrl.replace(/\/+$/, "");
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") {
      throw new TypeError("No fetch: pass options.fetch (Node 18+ and browsers have one)");
    }
    // Called unbound: a browser's fetch throws "Illegal invocation" when called as a method of another object.
    this.fetchImpl = (input, init) => f(input, init);
  }

  /** The repos the user tracks. */
  readonly repos = {
    /** Starts tracking `owner/name`: through the GitHub App where it can (`source: "app"`), else with a webhook (its URL and secret are in the answer, and only there). */
    track: (request: CreateRepoRequest, options?: CallOptions): Promise<CreatedRepo> =>
      this.request("POST", "/api/repos", { body: request, ...options }),
    /** The user's repos and how many of the plan's active slots they use. */
    list: (options?: CallOptions): Promise<RepoList> => this.request("GET", "/api/repos", options),
    /** Pauses a repo (its events are no longer delivered), or with `paused: false` makes it active again (within the plan's limit). */
    pause: (id: string, paused = true, options?: CallOptions): Promise<TrackedRepo> =>
      this.request("PATCH", `/api/repos/${encodeURIComponent(id)}`, { body: { paused }, ...options }),
    /** Makes a paused repo active again. */
    resume: (id: string, options?: CallOptions): Promise<TrackedRepo> =>
      this.request("PATCH", `/api/repos/${encodeURIComponent(id)}`, { body: { paused: false }, ...options }),
    /** Stops tracking a repo and deletes its events. */
    delete: (id: string, options?: CallOptions): Promise<void> =>
      this.request("DELETE", `/api/repos/${encodeURIComponent(id)}`, options),
    /** Replaces a webhook repo's secret (paste it into the repository's webhook settings). */
    rotateSecret: (id: string, options?: CallOptions): Promise<RotatedSecret> =>
      this.request("POST", `/api/repos/${encodeURIComponent(id)}/rotate-secret`, options),
  };

  /** Stored events (two weeks). */
  readonly events = {
    /** One page, newest first; pass `nextCursor` back as `cursor` for the next. */
    page: (query: EventQuery = {}, options?: CallOptions): Promise<GitHubEventPage> =>
      this.request("GET", `/api/github-events${queryString(query)}`, options),
    /** Every event matching `query`, newest first, following the keyset cursor page by page. */
    all: (query: Omit<EventQuery, "cursor"> = {}, options?: CallOptions): AsyncIterable<GitHubEventListItem> => {
      const page = this.events.page;
      return {
        async *[Symbol.asyncIterator]() {
          let cursor: string | undefined;
          do {
            const result = await page({ ...query, ...(cursor ? { cursor } : {}) }, options);
            yield* result.items;
            cursor = result.nextCursor ?? undefined;
          } while (cursor);
        },
      };
    },
    /** One event with its full GitHub payload (up to 25 MB). */
    get: (id: number | string, options?: CallOptions): Promise<GitHubEventDetail> =>
      this.request("GET", `/api/github-events/event?id=${encodeURIComponent(String(id))}`, options),
    /** Events stored after `since`, oldest first (for polling clients; the feed is better). */
    recent: (since: number, limit?: number, options?: CallOptions): Promise<RecentGitHubEvents> =>
      this.request("GET", `/api/github-events/recent${queryString({ since, limit })}`, options),
  };

  /** The plan and Stripe. */
  readonly billing = {
    /** The plan, subscription status and repo usage. */
    get: (options?: CallOptions): Promise<BillingSummary> => this.request("GET", "/api/billing", options),
    /** A Stripe Checkout URL for the Pro plan: open it in the browser. */
    checkoutUrl: async (options?: CallOptions): Promise<string> =>
      (await this.request<Schemas["CheckoutSession"]>("POST", "/api/checkout", options)).url,
    /** A Stripe customer portal URL (manage or cancel the subscription): open it in the browser. */
    portalUrl: async (options?: CallOptions): Promise<string> =>
      (await this.request<Schemas["PortalSession"]>("POST", "/api/billing/portal", options)).url,
  };

  /** Connect GitHub (CoTeX's GitHub App). */
  readonly githubApp = {
    /** Whether the app mode is on, and the user's GitHub connection with the repositories it can deliver. */
    status: (options?: CallOptions): Promise<GitHubAppStatus> => this.request("GET", "/api/github-app", options),
    /** The URL to open in the browser to connect the user's GitHub account (valid until `expiresAt`); then poll `status()`. */
    connect: (options?: CallOptions): Promise<GitHubConnectStart> => this.request("POST", "/api/github-app/connect", options),
    /** Asks for the user's access to be checked against GitHub again now (rate limited: 429 with `retryAfterSeconds`). */
    recheck: (options?: CallOptions): Promise<void> => this.request("POST", "/api/github-app/recheck", options),
    /** Disconnects the user's GitHub account. */
    disconnect: (options?: CallOptions): Promise<void> => this.request("DELETE", "/api/github-app", options),
  };

  /** The account. */
  readonly account = {
    /**
     * Closes the account: ends the subscription, deletes repos and events. Its tokens are refused from then on, and
     * open feeds end with {@link AccountClosedError}.
     */
    delete: (options?: CallOptions): Promise<void> => this.request("DELETE", "/api/me", options),
  };

  /** The user's realtime feed (needs `realtimeUrls`); see {@link CoTeXFeed}. */
  feed(options: Omit<FeedOptions, "accessToken" | "realtimeUrls"> & Partial<Pick<FeedOptions, "realtimeUrls">> = {}): CoTeXFeed {
    const realtimeUrls = options.realtimeUrls ?? this.options.realtimeUrls;
    if (!realtimeUrls) {
      throw new TypeError("feed(): give realtimeUrls (here or in the client's options)");
    }
    return new CoTeXFeed({ fetch: this.fetchImpl, ...options, realtimeUrls, accessToken: this.options.accessToken });
  }

  /** One call: JSON in and out, a fresh `X-Request-Id`, errors mapped to the typed classes. */
  private async request<T>(method: string, path: string, options: CallOptions & { body?: unknown } = {}): Promise<T> {
    const requestId = newRequestId();
    const url = this.apiUrl + path;
    const described = `${method} ${path}`;
    let token: string;
    try {
      token = await this.options.accessToken();
    } catch (error) {
      throw new TokenProviderError(`accessToken threw: ${error instanceof Error ? error.message : String(error)}`, {
        requestId,
        cause: error,
      });
    }
    const headers: Record<string, string> = {
      Accept: "application/json",
      Authorization: `Bearer ${token}`,
      "X-Request-Id": requestId,
    };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
    }

    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      throw new NetworkError(`${described}: no answer from ${this.apiUrl} (${error instanceof Error ? error.message : String(error)})`, {
        requestId,
        cause: error,
      });
    }

    if (!response.ok) {
      throw problemError({
        status: response.status,
        problem: await readProblem(response),
        request: described,
        requestId: response.headers.get("X-Request-Id") ?? requestId,
        retryAfterSeconds: retryAfterSeconds(response),
      });
    }
    if (response.status === 204 || response.headers.get("Content-Length") === "0") {
      await response.body?.cancel().catch(() => {});
      return undefined as T;
    }
    const text = await response.text();
    return (text.length === 0 ? undefined : JSON.parse(text)) as T;
  }
}

function queryString(query: { [key: string]: string | number | undefined } | EventQuery): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

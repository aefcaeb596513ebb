/**
 * `@cotex/client`: CoTeX for desktop apps built with web technology (Electron, Tauri, a browser), and Node.
 *
 * - {@link CoTeXClient}: the REST API (repos, events, billing, Connect GitHub, the account) for one signed-in user.
 * - {@link CoTeXFeed}: the user's GitHub events in real time, in position order, each once, resumed from the position
 *   the app saved, across reconnects, replica loss and token expiry.
 *
 * @packageDocumentation
 */
export { CoTeXClient } from "./client.js";
export type {
  BillingSummary,
  CallOptions,
  ClientOptions,
  CreateRepoRequest,
  CreatedRepo,
  EventQuery,
  GitHubAppStatus,
  GitHubConnectStart,
  GitHubEventDetail,
  GitHubEventListItem,
  GitHubEventPage,
  PlanUsage,
  RecentGitHubEvents,
  RepoList,
  RotatedSecret,
  TrackedRepo,
} from "./client.js";
export { CoTeXFeed, joinUrl } from "./feed.js";
export type { FeedEvents, FeedItem, FeedOptions, FeedState, FeedStats, HubConnectionLike } from "./feed.js";
export { backoffDelay, DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export {
  AccountClosedError,
  CoTeXError,
  ConnectionError,
  NetworkError,
  ProblemError,
  TokenProviderError,
  TokenRejectedError,
} from "./errors.js";
export type { ProblemDetails } from "./errors.js";
export { HUB_PATH, RECONNECT_CODES, ServerMessage, ClientMethod } from "./generated/hub.js";
export type {
  FeedPosition,
  FeedReset,
  GitHubEventSummary,
  ReconnectCode,
  ReconnectNotice,
  ServerMessages,
  ClientMethods,
} from "./generated/hub.js";
export type { components, paths } from "./generated/api.js";
export { LogLevel } from "@microsoft/signalr";

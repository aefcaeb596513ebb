import type { components } from "./generated/api.js";

/** The body of every CoTeX error response (RFC 9457 ProblemDetails), with the extensions some errors add. */
export type ProblemDetails = components["schemas"]["ProblemDetails"] & {
  /** A validation problem's messages by field (400). */
  errors?: Record<string, string[]>;
  /** The request's trace id, as the server logged it. */
  traceId?: string;
  [extension: string]: unknown;
};

/** Every error this package throws or reports is a `CoTeXError`; `kind` tells them apart without `instanceof`. */
export class CoTeXError extends Error {
  override name = "CoTeXError";
  readonly kind: "problem" | "token_rejected" | "account_closed" | "network" | "token_provider" | "connection" = "network";
  /** The `X-Request-Id` the call sent (also in the server's log lines for it), when there was a request. */
  readonly requestId: string | undefined;

  constructor(message: string, options: { requestId?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.requestId = options.requestId;
  }
}

/** The server answered with an error status and a ProblemDetails body (REST call, or the hub refusing a connection). */
export class ProblemError extends CoTeXError {
  override name = "ProblemError";
  override readonly kind: CoTeXError["kind"] = "problem";
  readonly status: number;
  readonly title: string | undefined;
  readonly detail: string | undefined;
  readonly problem: ProblemDetails;
  /** `METHOD url` of the call. */
  readonly request: string;
  /** Seconds the server asked to wait (`Retry-After`, on 429 and 503), if it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(init: {
    status: number;
    problem: ProblemDetails;
    request: string;
    requestId?: string | undefined;
    retryAfterSeconds?: number | undefined;
  }) {
    const { status, problem } = init;
    super(
      `${init.request} → ${status}${problem.title ? ` ${problem.title}` : ""}${problem.detail ? `: ${problem.detail}` : ""}` +
        (init.requestId ? ` (X-Request-Id ${init.requestId})` : ""),
      { requestId: init.requestId },
    );
    this.status = status;
    this.problem = problem;
    this.title = problem.title ?? undefined;
    this.detail = problem.detail ?? undefined;
    this.request = init.request;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

/**
 * 401: the server rejected the access token (expired, not signed for this server, malformed). Get a fresh one (sign
 * in again if refreshing fails). The feed reports it and keeps asking `accessToken` for a token, up to
 * `maxTokenRejections` refusals in a row.
 */
export class TokenRejectedError extends ProblemError {
  override name = "TokenRejectedError";
  override readonly kind = "token_rejected" as const;
}

/**
 * The user's account is closed (`DELETE /api/me`): its tokens are refused from then on. Final: the feed ends with it.
 */
export class AccountClosedError extends ProblemError {
  override name = "AccountClosedError";
  override readonly kind = "account_closed" as const;
}

/** A REST call got no answer (network down, DNS, the Api unreachable, aborted). */
export class NetworkError extends CoTeXError {
  override name = "NetworkError";
  override readonly kind = "network" as const;
}

/** The application's `accessToken` callback threw: the feed ends with this error (its `cause` is what was thrown). */
export class TokenProviderError extends CoTeXError {
  override name = "TokenProviderError";
  override readonly kind = "token_provider" as const;
}

/** A hub connection attempt failed or a connection dropped; the feed reconnects by itself (reported, not thrown). */
export class ConnectionError extends CoTeXError {
  override name = "ConnectionError";
  override readonly kind = "connection" as const;
  /** The Realtime URL of the attempt. */
  readonly url: string;

  constructor(message: string, url: string, cause?: unknown) {
    super(message, { cause });
    this.url = url;
  }
}

/** The server's words for a token whose account was closed (CoTeX.Shared AuthExtensions: "The token's account has been deleted."). */
const ACCOUNT_DELETED = /account has been (deleted|closed)/i;

/** The typed error for a ProblemDetails answer. */
export function problemError(init: ConstructorParameters<typeof ProblemError>[0]): ProblemError {
  const { status, problem } = init;
  if ((status === 401 && ACCOUNT_DELETED.test(problem.detail ?? "")) || (status === 410 && problem.title === "Account closed")) {
    return new AccountClosedError(init);
  }
  if (status === 401) {
    return new TokenRejectedError(init);
  }
  return new ProblemError(init);
}

/** Reads a ProblemDetails body; a body that is not one (a proxy's HTML page) becomes `{ status, title, detail }`. */
export async function readProblem(response: Response): Promise<ProblemDetails> {
  const text = await response.text().catch(() => "");
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      return parsed as ProblemDetails;
    }
  } catch {
    // not JSON
  }
  return { status: response.status, title: response.statusText || `HTTP ${response.status}`, detail: text.slice(0, 500) || null };
}

export function retryAfterSeconds(response: Response): number | undefined {
  const header = response.headers.get("Retry-After");
  if (!header) {
    return undefined;
  }
  const seconds = Number(header);
  if (Number.isFinite(seconds)) {
    return seconds;
  }
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** A new request id (UUID v4) for `X-Request-Id`; `crypto.randomUUID` needs a secure context, so not only that. */
export function newRequestId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === "function") {
    return c.randomUUID();
  }
  const bytes = new Uint8Array(16);
  if (typeof c?.getRandomValues === "function") {
    c.getRandomValues(bytes);
  } else {
    for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

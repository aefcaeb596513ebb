import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AccountClosedError,
  CoTeXClient,
  NetworkError,
  ProblemError,
  TokenProviderError,
  TokenRejectedError,
} from "../../src/index.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const seen: { method: string; url: string; requestId: string | undefined; authorization: string | undefined; body: string }[] = [];
let route: Handler = () => {};
let server: Server;
let apiUrl: string;

const problem = (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "Content-Type": "application/problem+json", ...headers });
  res.end(JSON.stringify({ status, ...body }));
};
const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        requestId: req.headers["x-request-id"] as string | undefined,
        authorization: req.headers.authorization,
        body,
      });
      route(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const client = () => new CoTeXClient({ apiUrl, accessToken: async () => "jwt-1" });

describe("CoTeXClient: requests", () => {
  it("sends a bearer token and a fresh X-Request-Id on every call, and JSON both ways", async () => {
    route = (req, body, res) =>
      req.method === "POST"
        ? json(res, 201, { id: "r1", fullName: JSON.parse(body).fullName, webhookUrl: "u", webhookSecret: "s", contentType: "application/json", source: "webhook" })
        : json(res, 200, { repos: [], plan: { name: "free", used: 0, limit: 3 } });
    seen.length = 0;
    const created = await client().repos.track({ fullName: "octo/cat" });
    const list = await client().repos.list();

    expect(created.fullName).toBe("octo/cat");
    expect(list.plan.limit).toBe(3);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(["POST /api/repos", "GET /api/repos"]);
    expect(seen.every((s) => s.authorization === "Bearer jwt-1")).toBe(true);
    expect(seen[0]!.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(seen[0]!.requestId).not.toBe(seen[1]!.requestId);
  });

  it("pauses, resumes, deletes (204: nothing) and rotates on the repo's own URL", async () => {
    route = (req, _body, res) => {
      if (req.method === "DELETE") {
        res.writeHead(204).end();
      } else if (req.url!.endsWith("rotate-secret")) {
        json(res, 200, { id: "r 1", webhookSecret: "new" });
      } else {
        json(res, 200, { id: "r 1", paused: true });
      }
    };
    seen.length = 0;
    const c = client();
    await c.repos.pause("r 1");
    await c.repos.resume("r 1");
    expect(await c.repos.delete("r 1")).toBeUndefined();
    expect((await c.repos.rotateSecret("r 1")).webhookSecret).toBe("new");
    expect(seen.map((s) => `${s.method} ${s.url} ${s.body}`)).toEqual([
      'PATCH /api/repos/r%201 {"paused":true}',
      'PATCH /api/repos/r%201 {"paused":false}',
      "DELETE /api/repos/r%201 ",
      "POST /api/repos/r%201/rotate-secret ",
    ]);
  });

  it("calls fetch unbound (a browser's fetch throws 'Illegal invocation' as another object's method)", async () => {
    route = (_req, _b, res) => json(res, 200, { repos: [], plan: { name: "free", used: 0, limit: 3 } });
    const strictFetch = function (this: unknown, input: RequestInfo | URL, init?: RequestInit) {
      if (this !== undefined && this !== globalThis) throw new TypeError("Illegal invocation");
      return fetch(input, init);
    } as typeof fetch;
    const c = new CoTeXClient({ apiUrl, accessToken: () => "t", fetch: strictFetch });
    expect((await c.repos.list()).plan.name).toBe("free");
  });

  it("events.all() follows the keyset cursor until the last page", async () => {
    const pages: Record<string, object> = {
      "": { items: [{ id: 5 }, { id: 4 }], nextCursor: "4" },
      "4": { items: [{ id: 3 }, { id: 2 }], nextCursor: "2" },
      "2": { items: [{ id: 1 }], nextCursor: null },
    };
    route = (req, _b, res) => json(res, 200, pages[new URL(req.url!, apiUrl).searchParams.get("cursor") ?? ""]);
    seen.length = 0;
    const ids: number[] = [];
    for await (const event of client().events.all({ type: "push", limit: 2 })) ids.push(event.id);
    expect(ids).toEqual([5, 4, 3, 2, 1]);
    expect(seen.map((s) => s.url)).toEqual([
      "/api/github-events?type=push&limit=2",
      "/api/github-events?type=push&limit=2&cursor=4",
      "/api/github-events?type=push&limit=2&cursor=2",
    ]);
  });

  it("billing and Connect GitHub return the URLs to open", async () => {
    route = (req, _b, res) =>
      json(res, 200, req.url === "/api/github-app/connect" ? { url: "https://github.test/auth", expiresAt: "2026-01-01T00:00:00Z" } : { url: `https://stripe.test${req.url}` });
    expect(await client().billing.checkoutUrl()).toBe("https://stripe.test/api/checkout");
    expect(await client().billing.portalUrl()).toBe("https://stripe.test/api/billing/portal");
    expect((await client().githubApp.connect()).url).toBe("https://github.test/auth");
  });
});

describe("CoTeXClient: errors", () => {
  it("maps an error answer to ProblemError with the server's ProblemDetails and the request id", async () => {
    route = (_req, _b, res) => problem(res, 404, { title: "Repo not found", detail: "You track no repo with the id x." });
    const error = await client().repos.delete("x").catch((e) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect(error).toMatchObject({ status: 404, title: "Repo not found", detail: "You track no repo with the id x.", request: "DELETE /api/repos/x" });
    expect(error.requestId).toBe(seen.at(-1)!.requestId);
    expect(error.message).toContain(error.requestId);
  });

  it("keeps a validation problem's field errors and a 429's Retry-After", async () => {
    route = (_req, _b, res) => problem(res, 400, { title: "One or more validation errors occurred.", errors: { fullName: ["Give the repository as owner/name"] } });
    const invalid = await client().repos.track({ fullName: "nope" }).catch((e) => e);
    expect(invalid.problem.errors).toEqual({ fullName: ["Give the repository as owner/name"] });

    route = (_req, _b, res) => problem(res, 429, { title: "Too many requests" }, { "Retry-After": "7" });
    const limited = await client().githubApp.recheck().catch((e) => e);
    expect(limited).toMatchObject({ status: 429, retryAfterSeconds: 7 });
  });

  it("tells a rejected token from a closed account", async () => {
    route = (_req, _b, res) => problem(res, 401, { title: "Unauthorized", detail: "The access token was rejected: it has expired." });
    expect(await client().billing.get().catch((e) => e)).toBeInstanceOf(TokenRejectedError);

    route = (_req, _b, res) => problem(res, 401, { title: "Unauthorized", detail: "The access token was rejected: The token's account has been deleted." });
    expect(await client().billing.get().catch((e) => e)).toBeInstanceOf(AccountClosedError);

    route = (_req, _b, res) => problem(res, 410, { title: "Account closed", detail: "This account has been closed; nothing was changed." });
    expect(await client().repos.track({ fullName: "a/b" }).catch((e) => e)).toBeInstanceOf(AccountClosedError);
  });

  it("turns a proxy's HTML error page into a ProblemError too", async () => {
    route = (_req, _b, res) => {
      res.writeHead(502, "Bad Gateway", { "Content-Type": "text/html" });
      res.end("<html>upstream down</html>");
    };
    const error = await client().account.delete().catch((e) => e);
    expect(error).toMatchObject({ status: 502, title: "Bad Gateway", detail: "<html>upstream down</html>" });
  });

  it("reports no answer as NetworkError, and a throwing token callback as TokenProviderError", async () => {
    const down = new CoTeXClient({ apiUrl: "http://127.0.0.1:9", accessToken: () => "t" });
    const error = await down.repos.list().catch((e) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);

    const signedOut = new CoTeXClient({ apiUrl, accessToken: () => Promise.reject(new Error("no session")) });
    expect(await signedOut.repos.list().catch((e) => e)).toBeInstanceOf(TokenProviderError);
  });
});

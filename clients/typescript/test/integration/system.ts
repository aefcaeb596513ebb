// The running CoTeX the integration tests talk to, described by environment variables (CoTeX.Tests'
// Clients/TypeScriptClientTests.cs starts it and sets them; see README.md, "Tests"):
//   COTEX_API_URL            the Api's base URL
//   COTEX_REALTIME_URLS      the Realtime replicas' base URLs, comma-separated (two)
//   COTEX_REALTIME_PIDS      their process ids, in the same order (a test kills one)
//   COTEX_DEVTOOLS           CoTeX.DevTools.dll (mints tokens: `dotnet <dll> token <uuid> --ttl N`; signs bodies: `sign --secret S`)
//   Auth__JwtSecret          the services' JWT secret, which DevTools signs tokens with
//   COTEX_BROWSER_ORIGIN     an origin in the services' CORS allowlist (Cors:AllowedOrigins) the browser test serves its page from
//   COTEX_CHROMIUM           Chromium's executable (default /usr/bin/chromium)
//   COTEX_GITHUB_PAYLOADS    real GitHub payloads (default ../../CoTeX.Testing/TestData/github-payloads)
import { execFile, spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CoTeXClient, type CreatedRepo } from "../../src/index.js";

const run = promisify(execFile);
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set. The integration tests run against a started CoTeX: ` +
        "dotnet test --project CoTeX.Tests -- --filter-class '*TypeScriptClientTests' starts one and sets every variable.",
    );
  }
  return value;
}

export const system = {
  get apiUrl() {
    return required("COTEX_API_URL");
  },
  get realtimeUrls() {
    return required("COTEX_REALTIME_URLS").split(",").map((u) => u.trim()).filter(Boolean);
  },
  get realtimePids() {
    return required("COTEX_REALTIME_PIDS").split(",").map((p) => Number(p.trim()));
  },
  get browserOrigin() {
    return required("COTEX_BROWSER_ORIGIN");
  },
  get chromium() {
    return process.env.COTEX_CHROMIUM || "/usr/bin/chromium";
  },
  get payloads() {
    return process.env.COTEX_GITHUB_PAYLOADS || join(packageRoot, "..", "..", "CoTeX.Testing", "TestData", "github-payloads");
  },
};

/** Replicas a test has killed: the others' URLs are what later tests use. */
const killed = new Set<string>();

export function liveRealtimeUrls(): string[] {
  return system.realtimeUrls.filter((u) => !killed.has(u));
}

/** Kills the replica at `url` (SIGKILL: no goodbye to its clients, as when a machine is lost). */
export function killReplica(url: string): number {
  const index = system.realtimeUrls.indexOf(url);
  const pid = system.realtimePids[index];
  if (index < 0 || pid === undefined || !Number.isFinite(pid)) {
    throw new Error(`no pid for ${url} in COTEX_REALTIME_PIDS`);
  }
  process.kill(pid, "SIGKILL");
  killed.add(url);
  return pid;
}

/** A dev token for `userId` from CoTeX.DevTools, valid for `ttlSeconds`. */
export async function mintToken(userId: string, ttlSeconds = 3600): Promise<string> {
  required("Auth__JwtSecret");
  const { stdout } = await run("dotnet", [required("COTEX_DEVTOOLS"), "token", userId, "--ttl", String(ttlSeconds)], {
    env: process.env,
  });
  return stdout.trim();
}

/** CoTeX.DevTools' signature of `body` (X-Hub-Signature-256), to check the one this file computes. */
export async function devToolsSignature(secret: string, body: Buffer): Promise<string> {
  const child = spawn("dotnet", [required("COTEX_DEVTOOLS"), "sign", "--secret", secret], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stdin.end(body);
  const code = await new Promise<number | null>((r) => child.on("close", r));
  if (code !== 0) throw new Error(`CoTeX.DevTools sign exited with ${code}`);
  return out.trim();
}

/** GitHub's X-Hub-Signature-256 (HMAC-SHA256 of the body with the webhook's secret). */
export function sign(secret: string, body: Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** A real GitHub payload (octokit/webhooks' examples in CoTeX.Testing/TestData), re-targeted at `fullName`. */
export async function payload(relativePath: string, fullName: string): Promise<Buffer> {
  const json = JSON.parse(await readFile(join(system.payloads, relativePath), "utf8"));
  if (json.repository && typeof json.repository === "object") {
    json.repository.full_name = fullName;
  }
  return Buffer.from(JSON.stringify(json));
}

export interface Delivered {
  id: number;
  position: number;
}

/** Delivers `body` as GitHub does to the repo's webhook; returns what the Api stored. */
export async function deliver(repo: CreatedRepo, eventType: string, body: Buffer): Promise<Delivered> {
  const response = await fetch(`${system.apiUrl.replace(/\/$/, "")}/api/webhooks/github/${repo.id}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": eventType,
      "X-GitHub-Delivery": randomUUID(),
      "X-Hub-Signature-256": sign(repo.webhookSecret!, body),
      "User-Agent": "GitHub-Hookshot/cotex-client-tests",
    },
    body: new Uint8Array(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`webhook → ${response.status}: ${text}`);
  const ack = JSON.parse(text) as { status: string; id: number; position: number };
  if (ack.status !== "stored") throw new Error(`webhook not stored: ${text}`);
  return { id: ack.id, position: ack.position };
}

/** Delivers `count` distinct deliveries of one payload, `concurrency` at a time; returns them in position order. */
export async function deliverMany(repo: CreatedRepo, eventType: string, body: Buffer, count: number, concurrency = 16): Promise<Delivered[]> {
  const out: Delivered[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        out.push(await deliver(repo, eventType, body));
      }
    }),
  );
  return out.sort((a, b) => a.position - b.position);
}

export interface User {
  userId: string;
  token: () => Promise<string>;
  client: CoTeXClient;
  repo: CreatedRepo;
}

/** A new user (a fresh uuid) who tracks a webhook repo; `ttlSeconds` for the tokens their client asks for. */
export async function newUser(options: { ttlSeconds?: number; tokens?: string[] } = {}): Promise<User> {
  const userId = randomUUID();
  let cached: string | undefined;
  const token = async () => {
    if (options.ttlSeconds !== undefined || !cached) {
      cached = await mintToken(userId, options.ttlSeconds ?? 3600);
      options.tokens?.push(cached);
    }
    return cached;
  };
  const client = new CoTeXClient({ apiUrl: system.apiUrl, realtimeUrls: liveRealtimeUrls(), accessToken: token });
  const repo = await client.repos.track({ fullName: `cotex-ts/${userId.slice(0, 8)}`, source: "webhook" });
  return { userId, token, client, repo };
}

export async function eventually(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

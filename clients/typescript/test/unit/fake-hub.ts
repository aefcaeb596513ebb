import type { HubConnectionLike } from "../../src/index.js";
import type { GitHubEventSummary } from "../../src/index.js";

/** A scripted hub connection: the test decides whether start succeeds and what the server sends. */
export class FakeConnection implements HubConnectionLike {
  readonly handlers = new Map<string, (...args: any[]) => void>();
  readonly closeCallbacks: ((error?: Error) => void)[] = [];
  readonly invocations: { method: string; args: unknown[] }[] = [];
  closed = false;

  constructor(
    readonly hubUrl: string,
    readonly token: string,
    private readonly hub: FakeHub,
  ) {}

  start(): Promise<void> {
    return this.hub.refuse.has(this.hubUrl) ? Promise.reject(new Error(`refused: ${this.hubUrl}`)) : Promise.resolve();
  }

  stop(): Promise<void> {
    this.close(undefined);
    return Promise.resolve();
  }

  invoke(method: string, ...args: unknown[]): Promise<unknown> {
    this.invocations.push({ method, args });
    this.hub.onInvoke?.(this, method, args);
    return Promise.resolve(null);
  }

  on(method: string, handler: (...args: any[]) => void): void {
    this.handlers.set(method, handler);
  }

  onclose(callback: (error?: Error) => void): void {
    this.closeCallbacks.push(callback);
  }

  /** The server sends a message. */
  send(method: string, payload: unknown): void {
    this.handlers.get(method)?.(payload);
  }

  /** The connection ends (an error: it dropped). */
  close(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const callback of this.closeCallbacks) callback(error);
  }

  get subscribedFrom(): unknown {
    return this.invocations.find((i) => i.method === "Subscribe")?.args[0];
  }
}

export class FakeHub {
  readonly connections: FakeConnection[] = [];
  readonly refuse = new Set<string>();
  onInvoke: ((connection: FakeConnection, method: string, args: unknown[]) => void) | undefined;

  readonly factory = (hubUrl: string, accessToken: () => string): HubConnectionLike => {
    const connection = new FakeConnection(hubUrl, accessToken(), this);
    this.connections.push(connection);
    return connection;
  };

  get last(): FakeConnection {
    const last = this.connections.at(-1);
    if (!last) throw new Error("no connection yet");
    return last;
  }

  /** The latest connection that subscribed and is still open. */
  async subscribed(count = 1): Promise<FakeConnection> {
    await waitFor(() => this.connections.filter((c) => c.subscribedFrom !== undefined).length >= count, "a subscription");
    return this.connections.filter((c) => c.subscribedFrom !== undefined)[count - 1]!;
  }
}

export function summary(position: number, id = position * 10): GitHubEventSummary {
  return {
    id,
    position,
    repoId: "0190c0de-0000-7000-8000-000000000001",
    repoFullName: "Codertocat/Hello-World",
    type: "issues",
    action: "opened",
    sender: "Codertocat",
    title: `event ${position}`,
    htmlUrl: null,
    receivedAt: new Date(0).toISOString(),
  };
}

export async function waitFor(condition: () => boolean, what = "condition", timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

// Prints the signed-in user's CoTeX events as they arrive, resuming where the last run stopped.
// Runs in Electron's main process (`electron examples/electron-main.mjs`) or in plain Node 20+:
//
//   dotnet run --project CoTeX.AppHost            # a local CoTeX (Api on :5080, Realtime on :5081)
//   npm ci && npm run build                        # in clients/typescript
//   COTEX_TOKEN=$(../../eng/mint-token.sh) node examples/electron-main.mjs
//
// In an app, import from "@cotex/client", and return the Supabase session's current access token from accessToken.
import { readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { CoTeXClient, AccountClosedError, TokenRejectedError } from "../dist/index.js";

const token = process.env.COTEX_TOKEN;
if (!token) {
  console.error("Set COTEX_TOKEN to an access token: COTEX_TOKEN=$(eng/mint-token.sh) node examples/electron-main.mjs");
  process.exit(2);
}

// Electron: keep the position in app.getPath("userData"); here, a file in the home folder.
let electron;
try {
  electron = await import("electron");
} catch {
  // plain Node
}
const userData = electron?.app?.getPath?.("userData") ?? homedir();
const positionFile = join(userData, ".cotex-example-position");

const cotex = new CoTeXClient({
  apiUrl: process.env.COTEX_API_URL ?? "http://localhost:5080",
  realtimeUrls: (process.env.COTEX_REALTIME_URLS ?? "http://localhost:5081").split(","),
  accessToken: () => token,
});

const { repos, plan } = await cotex.repos.list();
console.log(`${repos.length} tracked repo(s) on the ${plan.name} plan: ${repos.map((r) => r.fullName).join(", ") || "none yet"}`);

const feed = cotex.feed({
  loadPosition: async () => Number(await readFile(positionFile, "utf8").catch(() => "")) || undefined,
  savePosition: (position) => writeFile(positionFile, String(position)),
});
feed.on("state", (state) => console.log(`[${state}]`));
feed.on("caughtUp", (position) => console.log(`caught up to position ${position}; live from here`));
feed.on("error", (error) => {
  if (error instanceof AccountClosedError) console.error("The account is closed: sign out.");
  else if (error instanceof TokenRejectedError) console.error(`Token refused (${error.detail}): get a fresh one.`);
  else console.warn(`${error.name}: ${error.message}`);
});

// Electron main: no online/offline events here; follow the machine's sleep instead.
electron?.powerMonitor?.on("suspend", () => feed.pause());
electron?.powerMonitor?.on("resume", () => feed.resume());
process.once("SIGINT", () => void feed.close());

try {
  for await (const item of feed) {
    if (item.type === "reset") {
      console.log(`History before position ${item.position} is gone (${item.reason}); reloading the last 20 events:`);
      let n = 0;
      for await (const event of cotex.events.all({ limit: 20 })) {
        console.log(`  ${event.receivedAt} ${event.repoFullName} ${event.type} ${event.title ?? ""}`);
        if (++n === 20) break;
      }
      continue;
    }
    const e = item.event;
    console.log(`#${e.position} ${e.receivedAt} ${e.repoFullName} ${e.type}${e.action ? `.${e.action}` : ""} by ${e.sender ?? "?"}: ${e.title ?? ""} ${e.htmlUrl ?? ""}`);
  }
} catch (error) {
  console.error(`The feed ended: ${error.message}`);
  process.exitCode = 1;
}
electron?.app?.quit?.();

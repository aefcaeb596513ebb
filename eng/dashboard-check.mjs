// Renders the Aspire dashboard of a running AppHost in headless Chromium and does what a newcomer does first: look at
// the resources, run the api's "Send a sample GitHub webhook" command, and open the trace it produced. Writes
// dashboard.png, commands.png and trace.png into the output folder and fails if any step does not render.
//
//   apt-get install chromium && (cd /tmp && npm install playwright-core)
//   PLAYWRIGHT_FROM=/tmp/ node eng/dashboard-check.mjs '<login URL printed by the AppHost>' docs
//
// Have a client of the dev user connected (e.g. `dotnet run --project CoTeX.Cli -- watch`) to see the Realtime send.
import { createRequire } from 'node:module';

// playwright-core is installed wherever is convenient (it is not a dependency of the repository).
const { chromium } = createRequire(process.env.PLAYWRIGHT_FROM ?? `${process.cwd()}/`)('playwright-core');

const [login, out = '.'] = process.argv.slice(2);
if (!login) {
  console.error('usage: node eng/dashboard-check.mjs <dashboard login URL> [output folder]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  // This machine's network is closed: no background fetches, no first-run, no component updates.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 720 } });
  await page.goto(login);
  for (const resource of ['postgres', 'redis', 'migrations', 'api', 'worker', 'CoTeX.Realtime.csproj']) {
    await page.getByText(resource).first().waitFor({ timeout: 60_000 });
  }
  await page.waitForTimeout(2_000);
  await page.screenshot({ path: `${out}/dashboard.png` });

  // The api row's last action button opens its menu of commands.
  await page.locator('tr', { hasText: 'CoTeX.Api.csproj' }).locator('.resource-actions fluent-button').last().click();
  await page.getByText('Send a sample GitHub webhook').waitFor();
  await page.screenshot({ path: `${out}/commands.png` });
  await page.getByText('Send a sample GitHub webhook').click();
  await page.getByText('"Send a sample GitHub webhook" succeeded').waitFor({ timeout: 30_000 });

  // The delivery's trace: the filter matches the start of trace names.
  await page.goto(new URL('/traces', login).toString());
  await page.locator('fluent-search input, input[placeholder*="ilter"]').first().fill('POST /api/webhooks');
  await page.getByText(/POST \/api\/webhooks/).first().click({ timeout: 30_000 });
  for (const span of ['ingest batch', 'MSG redis cotex:github-event-batches']) {
    await page.getByText(span).first().waitFor({ timeout: 30_000 });
  }
  await page.waitForTimeout(1_000);
  await page.screenshot({ path: `${out}/trace.png` });
  console.log((await page.innerText('body')).split('\n').filter(line => /^(POST|ingest|MSG|postgresql|realtime|api)/.test(line)).join('\n'));
} finally {
  await browser.close();
}

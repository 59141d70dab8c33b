// Full page loads of the dashboard in Debian's Chromium; run by
// server/benches/dashboard.rs (scripts/bench-dashboard), which starts and
// seeds the server. Prints figures: navigation start until the page has
// rendered its data (body[data-ready]), and the server time the browser saw
// for the API call behind the page (responseStart - requestStart).
import { chromium } from "@playwright/test";

const url = process.env.WFH_URL;
const runs = Number(process.env.WFH_BENCH_RUNS || 9);
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const browser = await chromium.launch({
  executablePath: process.env.WFH_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
const page = await context.newPage();
const signIn = await page.request.post(`${url}/api/session`, { data: { token: process.env.WFH_ADMIN_TOKEN } });
if (signIn.status() !== 201) throw new Error(`sign-in: ${signIn.status()}`);

async function measure(label, path, ready, api, check) {
  const full = [];
  const server = [];
  let detail = "";
  for (let i = 0; i < runs; i++) {
    const t0 = Date.now();
    await page.goto(`${url}${path}`);
    await page.waitForSelector(`body[data-ready="${ready}"]`);
    full.push(Date.now() - t0);
    server.push(
      await page.evaluate((api) => {
        const e = performance.getEntriesByType("resource").filter((r) => r.name.includes(api)).pop();
        return e ? e.responseEnd - e.requestStart : NaN;
      }, api),
    );
    detail = await check();
  }
  console.log(
    `  ${label.padEnd(44)} full load ${String(median(full)).padStart(5)} ms   API as the browser saw it ${median(server).toFixed(1).padStart(6)} ms   ${detail}`,
  );
}

console.log(`Chromium, full page load (navigation to data rendered), median of ${runs}:`);
await measure("team board, 1,000 employees", "/", "/", "/api/admin/employees", async () => `${await page.locator("table.board tbody tr").count()} rows`);
const from = process.env.WFH_FROM;
const to = process.env.WFH_TO;
await measure("logs, everyone, 30 days (page of 50)", `/logs?from=${from}&to=${to}`, "/logs", "/api/admin/logs?", async () => `${await page.locator("tr[data-log]").count()} rows`);
await measure(
  "logs, one employee, 30 days (page of 50)",
  `/logs?employee_id=${process.env.WFH_EMPLOYEE}&from=${from}&to=${to}`,
  "/logs",
  "/api/admin/logs?",
  async () => `${await page.locator("tr[data-log]").count()} rows`,
);
await browser.close();

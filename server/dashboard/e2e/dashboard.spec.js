// The dashboard in Debian's Chromium against the real server with a seeded
// team (see server/tests/api/seed.rs for what was seeded).
import { test, expect } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { PNG } from "pngjs";

const fixture = JSON.parse(fs.readFileSync(process.env.WFH_FIXTURE, "utf8"));
const TOKEN = process.env.WFH_ADMIN_TOKEN;
const PICTURES = process.env.WFH_PICTURES;
const ARTIFACTS = process.env.WFH_ARTIFACTS;
const ana = fixture.employees[0];

// Any error in the page's console (a script error, a request the
// Content-Security-Policy blocked) fails the test it happened in.
let consoleErrors = [];
test.beforeEach(async ({ page }) => {
  consoleErrors = [];
  page.on("console", (m) => {
    // A refused sign-in answers 401 on purpose.
    if (m.type() === "error" && !/status of 40[13]/.test(m.text())) consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
});
test.afterEach(() => {
  expect(consoleErrors).toEqual([]);
});

async function picture(page, name, options = {}) {
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: path.join(PICTURES, `${name}.png`), ...options });
}

async function ready(page, route) {
  await page.waitForSelector(`body[data-ready="${route}"]`);
}

async function signIn(page) {
  await page.goto("/login");
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await ready(page, "/");
}

/** Scroll every lazy thumbnail into view and wait until all have loaded. */
async function loadThumbnails(page) {
  const imgs = page.locator("button.thumb img");
  const n = await imgs.count();
  for (let i = 0; i < n; i++) await imgs.nth(i).scrollIntoViewIfNeeded();
  // Thumbnails are made on first view: allow for a debug build.
  await expect
    .poll(() => imgs.evaluateAll((all) => all.filter((i) => i.complete && i.naturalWidth > 0).length), { timeout: 45_000 })
    .toBe(n);
  return n;
}

test("sign-in refuses a wrong token, then sets a strict HttpOnly session cookie", async ({ page, context }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  await page.getByLabel("Admin token").fill("wfh_a_wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("That is not a valid admin token.");
  await picture(page, "sign-in");
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await ready(page, "/");
  const cookie = (await context.cookies()).find((c) => c.name === "wfh_session");
  expect(cookie.httpOnly).toBe(true);
  expect(cookie.sameSite).toBe("Strict");
  // The token itself is kept nowhere in the page.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toContain(TOKEN);
});

test("the board shows every employee with status and last seen, and searches by name", async ({ page }) => {
  await signIn(page);
  const rows = page.locator("table.board tbody tr");
  await expect(rows).toHaveCount(fixture.employees.length);
  for (const e of fixture.employees) {
    const row = page.locator(`tr[data-employee="${e.username}"]`);
    await expect(row.locator(".badge")).toHaveText(e.status[0].toUpperCase() + e.status.slice(1));
    await expect(row).toContainText(e.display_name);
  }
  const online = fixture.employees.filter((e) => e.status === "online").length;
  await expect(page.locator(".count.status-online b")).toHaveText(String(online));
  await expect(page.locator(`tr[data-employee="${ana.username}"] time`)).toHaveText(/just now|min ago/);
  await picture(page, "board", { fullPage: true });

  await page.getByLabel("Search").fill("müll");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("Lena Müller");
  await expect(page).toHaveURL(/q=m%C3%BCll/);
  await page.getByLabel("Search").fill("nobody-by-this-name");
  await expect(rows.first()).toHaveText("No employee matches.");
});

test("logs: last 7 days by default, paginated, filtered by employee and dates; thumbnails and full size", async ({ page }) => {
  await signIn(page);
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Logs" }).click();
  await ready(page, "/logs");
  // Page through the default filter: every log of the last 7 days, once.
  const seen = new Set();
  for (;;) {
    const ids = await page.locator("tr[data-log]").evaluateAll((rows) => rows.map((r) => r.dataset.log));
    for (const id of ids) {
      expect(seen.has(id)).toBe(false);
      seen.add(id);
    }
    const older = page.getByRole("link", { name: "Older →" });
    if ((await older.count()) === 0) break;
    await older.click();
    await ready(page, "/logs");
  }
  expect(seen.size).toBe(fixture.logs_last_7_days);

  await nav.getByRole("link", { name: "Logs" }).click();
  await ready(page, "/logs");
  await loadThumbnails(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  await picture(page, "logs");

  // One person, a three-day range.
  const days = Object.keys(fixture.logs_by_day[ana.id]).sort();
  const to = days[days.length - 1];
  const from = days[Math.max(0, days.length - 3)];
  await page.getByLabel("Employee", { exact: true }).selectOption(String(ana.id));
  await page.getByLabel("From", { exact: true }).fill(from);
  await page.getByLabel("To", { exact: true }).fill(to);
  await page.getByRole("button", { name: "Show" }).click();
  await ready(page, "/logs");
  await expect(page).toHaveURL(new RegExp(`employee_id=${ana.id}&from=${from}&to=${to}`));
  const expected = days.filter((d) => d >= from && d <= to).reduce((n, d) => n + fixture.logs_by_day[ana.id][d], 0);
  const rows = page.locator("tr[data-log]");
  await expect(rows).toHaveCount(expected);
  for (const text of await rows.allInnerTexts()) {
    expect(text).toContain(ana.hostname);
    expect(text).toContain("London, United Kingdom");
  }
  expect(await loadThumbnails(page)).toBe(expected);

  // Full size in a dialog; Escape closes it and focus comes back.
  await rows.first().locator("button.thumb").click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  await expect.poll(() => page.locator("#viewer-img").evaluate((i) => i.naturalWidth)).toBe(1280);
  await expect(dialog).toContainText("81.2.69.142");
  await picture(page, "screenshot");
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(rows.first().locator("button.thumb")).toBeFocused();

  // A start after the end is refused in the page.
  await page.getByLabel("From", { exact: true }).fill(to);
  await page.getByLabel("To", { exact: true }).fill(from);
  if (from !== to) {
    await page.getByRole("button", { name: "Show" }).click();
    await expect(page.getByRole("alert")).toHaveText("The start date is after the end date.");
  }
});

test("an employee's day: timeline from heartbeats, totals, that day's logs and agent events", async ({ page }) => {
  await signIn(page);
  const day = fixture.day;
  await page.goto(`/employees/${day.employee_id}/${day.date}`);
  await ready(page, `/employees/${day.employee_id}/${day.date}`);
  await expect(page.getByRole("heading", { level: 1 })).toContainText(ana.display_name);
  const fact = (name) => page.locator(".facts div").filter({ hasText: name }).locator("dd");
  await expect(fact("Online")).toHaveText(day.online);
  await expect(fact("Idle")).toHaveText(day.idle);
  await expect(fact("Paused")).toHaveText(day.paused);
  await expect(fact("Heartbeats")).toHaveText(String(day.heartbeats));
  await expect(fact("First heartbeat")).toContainText("09:00");
  await expect(fact("Last heartbeat")).toHaveText("17:25");
  const timeline = page.getByRole("img", { name: /online/ });
  await expect(timeline).toHaveAttribute("aria-label", /12:00–12:30 paused/);
  await expect(timeline).toHaveAttribute("aria-label", /15:00–15:45 idle/);
  // The bar is drawn: the working day's online stretches take real width.
  const box = await timeline.boundingBox();
  const seg = await page.locator(".seg.status-online").first().boundingBox();
  expect(seg.width).toBeGreaterThan(box.width * (170 / 1440));
  expect(seg.x).toBeGreaterThan(box.x + box.width * (530 / 1440));
  await expect(page.locator("tr[data-log]")).toHaveCount(day.logs);
  await expect(page.locator(".events li")).toHaveCount(2);
  await expect(page.locator(".events")).toContainText("Agent started");
  await expect(page.locator(".events")).toContainText("Agent stopped: log-off or shutdown");
  await loadThumbnails(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  await picture(page, "day", { fullPage: true });
  // Day navigation.
  await page.getByRole("link", { name: "← Previous day" }).click();
  await expect(page).not.toHaveURL(new RegExp(day.date));
});

test("summaries: a team's week with its totals, one person's days, CSV", async ({ page }) => {
  await signIn(page);
  const sum = fixture.summary;
  await page.getByRole("link", { name: "Summaries" }).click();
  await ready(page, "/summary");
  await page.getByLabel("Who").selectOption({ label: sum.team });
  await page.getByLabel("Period").selectOption("week");
  // The week of the seeded full working day of the first person (Ana, in
  // this team): it has data whatever day and hour the test runs.
  await page.getByLabel("Containing").fill(fixture.day.date);
  await page.getByRole("button", { name: "Show" }).click();
  await ready(page, "/summary");
  await expect(page).toHaveURL(new RegExp(`team=${sum.team}`));
  await expect(page.locator("#period-label")).toContainText(/Week \d{4}-W\d\d/);
  const team = page.getByRole("region", { name: `Team ${sum.team}: everyone together` });
  await expect(team).toBeVisible();
  const fig = (region, name) => region.locator("dt").filter({ hasText: name }).locator("xpath=following-sibling::dd[1]");
  await expect(fig(team, "Top applications")).toContainText(sum.top_app);
  await expect(fig(team, "Active / idle")).toContainText("measured input");
  await expect(fig(team, "Detailed logs")).toContainText("expected");
  await expect(page.locator("table.summary-people tbody tr")).toHaveCount(sum.team_size);
  await picture(page, "summary-team", { fullPage: true });

  // One person: the week day by day.
  await page.locator("table.summary-people tbody tr").first().getByRole("link").click();
  await ready(page, "/summary");
  await expect(page.locator("table.summary-days tbody tr")).toHaveCount(7);
  const person = page.getByRole("region", { name: /: the week$/ });
  await expect(fig(person, "Online")).not.toHaveText("0 h 00");
  await expect(fig(person, "Key presses (count only)")).toHaveText(/^\d+$/);
  await picture(page, "summary-employee", { fullPage: true });

  // The CSV of what is shown.
  const href = await page.getByRole("link", { name: "Export CSV" }).getAttribute("href");
  expect(href).toContain("format=csv");
  const csv = await page.evaluate(async (u) => (await fetch(u)).text(), href);
  expect(csv.split("\n")[0]).toMatch(/^employee,team,date,hours in day/);
  expect(csv.trim().split("\n")).toHaveLength(1 + 7 + 1);

  // The PDF report of the team's week: text, and a picture of page 1.
  await page.goBack();
  await ready(page, "/summary");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export PDF" }).click()]);
  const summaryPdf = path.join(ARTIFACTS, "summary.pdf");
  await download.saveAs(summaryPdf);
  const text = execFileSync("pdftotext", ["-layout", summaryPdf, "-"], { encoding: "utf8" });
  expect(text).toContain(`WFH Monitor - summary: Team ${sum.team}`);
  expect(text).toContain(`Team ${sum.team}, together`);
  expect(text).toContain(ana.display_name.replace("ó", "ó"));
  execFileSync("pdftoppm", ["-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", summaryPdf, path.join(ARTIFACTS, "summary-page")]);
  fs.copyFileSync(path.join(ARTIFACTS, "summary-page.png"), path.join(PICTURES, "summary-pdf.png"));
  await page.goForward();
  await ready(page, "/summary");

  // Previous week.
  await page.getByRole("link", { name: "← Previous" }).click();
  await ready(page, "/summary");
  await expect(page.locator("table.summary-days tbody tr")).toHaveCount(7);
});

test("CSV and PDF exports of the current filter; the PDF has the table and a thumbnail per row", async ({ page }) => {
  await signIn(page);
  const days = Object.keys(fixture.logs_by_day[ana.id]).sort();
  const from = days[0];
  const to = days[days.length - 1];
  const expected = days.reduce((n, d) => n + fixture.logs_by_day[ana.id][d], 0);
  await page.goto(`/logs?employee_id=${ana.id}&from=${from}&to=${to}`);
  await ready(page, "/logs");

  const [csvDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export CSV" }).click()]);
  expect(csvDownload.suggestedFilename()).toBe(`wfh-logs-${from}-to-${to}.csv`);
  const csv = fs.readFileSync(await csvDownload.path(), "utf8").trim().split("\n");
  expect(csv[0]).toBe(fixture.csv_header.join(","));
  expect(csv.length - 1).toBe(expected);
  for (const line of csv.slice(1)) expect(line).toContain(",ana.lopez,Ana López,");

  const [pdfDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Export PDF" }).click()]);
  expect(pdfDownload.suggestedFilename()).toBe(`wfh-logs-${from}-to-${to}.pdf`);
  const pdf = path.join(ARTIFACTS, "logs.pdf");
  await pdfDownload.saveAs(pdf);

  // The text layer holds the table.
  const text = execFileSync("pdftotext", ["-layout", pdf, "-"], { encoding: "utf8" });
  for (const heading of ["Screenshot", "Time (employee's local)", "Employee", "Computer", "Local IPs", "Public IP", "Location"]) {
    expect(text).toContain(heading);
  }
  expect(text).toContain("Ana López (ana.lopez)");
  expect(text.split(ana.hostname).length - 1).toBe(expected);
  expect(text).toContain("London, United Kingdom");

  // Rendered, page 1 shows a thumbnail in each row: the seeded desktops'
  // magenta title bars, one band per row down the screenshot column.
  execFileSync("pdftoppm", ["-png", "-r", "100", "-f", "1", "-l", "1", pdf, path.join(ARTIFACTS, "page")]);
  const rendered = fs.readdirSync(ARTIFACTS).find((f) => f.startsWith("page") && f.endsWith(".png"));
  const png = PNG.sync.read(fs.readFileSync(path.join(ARTIFACTS, rendered)));
  let bands = 0;
  let last = -100;
  for (let y = 0; y < png.height; y++) {
    let hits = 0;
    for (let x = 0; x < png.width * 0.25; x++) {
      const i = (png.width * y + x) * 4;
      const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      if (Math.abs(r - 216) < 40 && Math.abs(g - 27) < 40 && Math.abs(b - 96) < 40) hits++;
    }
    if (hits > 40) {
      if (y - last > 10) bands++;
      last = y;
    }
  }
  // A4 landscape: 6 rows of 76 pt fit on a page.
  expect(bands).toBe(Math.min(expected, 6));
  fs.copyFileSync(path.join(ARTIFACTS, rendered), path.join(PICTURES, "export-pdf.png"));
});

test("administration: add an employee and see the code, disable, revoke a device", async ({ page, request }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Administration" }).click();
  await ready(page, "/admin");
  await page.getByLabel("Username").fill("new.hire");
  await page.getByLabel("Full name (optional)").fill("Noor Haddad");
  await page.getByRole("button", { name: "Add" }).click();
  const card = page.locator(".card.code");
  await expect(card).toContainText("Enrolment code for Noor Haddad");
  const code = await card.locator(".code-value").innerText();
  expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  await expect(card.locator("pre")).toHaveText(`wfh-agent enroll --server ${new URL(process.env.WFH_URL).origin} --code ${code}`);
  await expect(page.locator('tr[data-employee="new.hire"]')).toBeVisible();
  await picture(page, "admin");

  // The code works for enrolment.
  const enrolled = await request.post("/api/enroll", { data: { code, username: "noor", hostname: "noor-laptop" } });
  expect(enrolled.status()).toBe(201);

  // Disable, after a confirmation.
  page.once("dialog", (d) => d.accept());
  await page.locator('tr[data-employee="new.hire"]').getByRole("button", { name: "Disable" }).click();
  await expect(page.locator('tr[data-employee="new.hire"] .badge')).toHaveText("Disabled");

  // Revoke a device: its token stops working at once.
  const row = page.locator(`tr[data-employee="${fixture.revoke_username}"]`);
  await row.getByRole("button", { name: "Show devices" }).click();
  page.once("dialog", (d) => d.accept());
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row.locator(".device-list .badge")).toHaveText("Revoked");
  const beat = await request.post("/api/heartbeat", {
    headers: { authorization: `Bearer ${fixture.revoke_token}` },
    data: { username: "x", hostname: "x", status: "online", timestamp: new Date().toISOString(), event_id: crypto.randomUUID() },
  });
  expect(beat.status()).toBe(401);
});

test("administration: an admin token is shown once, listed, and revoked for good", async ({ page, request }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Administration" }).click();
  await ready(page, "/admin");
  await page.getByLabel("What it is for").fill("backup script");
  await page.getByLabel("Expires after (days)").fill("90");
  await page.getByRole("button", { name: "Create" }).click();
  const shown = page.locator(".tokens .card.code .code-value");
  await expect(shown).toHaveText(/^wfh_a_[A-Za-z0-9_-]{43}$/);
  const token = await shown.innerText();
  const row = page.locator(".tokens tbody tr", { hasText: "backup script" });
  await expect(row).toContainText("Active");
  await expect(row).not.toContainText(token);
  const asToken = () => request.get("/api/admin/employees", { headers: { authorization: `Bearer ${token}` } });
  expect((await asToken()).status()).toBe(200);
  await page.evaluate(() => document.fonts.ready);
  await page.locator(".tokens").screenshot({ path: path.join(PICTURES, "admin-tokens.png") });

  page.once("dialog", (d) => d.accept());
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toContainText("Revoked");
  await expect(row.getByRole("button", { name: "Revoke" })).toHaveCount(0);
  expect((await asToken()).status()).toBe(401);
});

test("changes need the CSRF token; signing out ends the session", async ({ page }) => {
  await signIn(page);
  // The page's own cookie, but no X-CSRF-Token header: refused.
  const forged = await page.request.post("/api/admin/employees", { data: { username: "mallory" } });
  expect(forged.status()).toBe(403);
  expect((await forged.json()).error.code).toBe("csrf_failed");
  expect((await page.request.get("/api/admin/employees")).status()).toBe(200);

  await page.getByRole("button", { name: "Sign out" }).click();
  await ready(page, "/login");
  expect((await page.request.get("/api/admin/employees")).status()).toBe(401);
  await page.goto("/admin");
  await expect(page).toHaveURL(/\/login\?next=%2Fadmin$/);
});

test("keyboard and phone: skip link, labelled controls, no sideways scrolling", async ({ page }) => {
  await signIn(page);
  await page.goto("/");
  await ready(page, "/");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Team" })).toBeFocused();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await ready(page, "/logs");

  // Every form control has a label.
  for (const route of ["/", "/logs", "/admin"]) {
    await page.goto(route);
    await ready(page, route);
    const unlabelled = await page.locator("input, select").evaluateAll((els) => els.filter((e) => !(e.labels && e.labels.length)).map((e) => e.id || e.name));
    expect(unlabelled).toEqual([]);
  }

  await page.setViewportSize({ width: 390, height: 844 });
  for (const route of ["/", "/logs"]) {
    await page.goto(route);
    await ready(page, route);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
  }
  await page.goto("/");
  await ready(page, "/");
  await picture(page, "board-phone");
});

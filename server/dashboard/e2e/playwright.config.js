// Run by server/tests/api/dashboard.rs, which starts the server, seeds it
// and passes WFH_URL, WFH_ADMIN_TOKEN, WFH_FIXTURE, WFH_PICTURES, WFH_ARTIFACTS.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: ".",
  testMatch: /.*\.spec\.js$/,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  outputDir: `${process.env.WFH_ARTIFACTS || "/tmp"}/playwright-results`,
  use: {
    baseURL: process.env.WFH_URL,
    viewport: { width: 1366, height: 860 },
    deviceScaleFactor: 1,
    acceptDownloads: true,
    locale: "en-GB",
    timezoneId: "UTC",
    launchOptions: {
      executablePath: process.env.WFH_CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu"],
    },
  },
});

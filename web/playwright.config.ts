// End-to-end tests: Debian's Chromium driven against `vidgate serve` with emulated providers and
// payment gateways, on an embedded database in a throw-away data dir.
import { defineConfig } from "@playwright/test";

const PORT = Number(process.env.VIDGATE_E2E_PORT ?? 8765);
const BASE_URL = `http://127.0.0.1:${PORT}`;
const OUTPUT = process.env.VIDGATE_E2E_OUTPUT ?? "test-results";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "e2e",
  outputDir: OUTPUT,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"], ["json", { outputFile: `${OUTPUT}/report.json` }]],
  use: {
    baseURL: BASE_URL,
    locale: "en-US",
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: `bash e2e/serve.sh ${PORT}`,
    url: `${BASE_URL}/readyz`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
  },
});

// Helpers of the console spec: roles given at the command line (`vidgate user role`, against the
// same data dir and embedded database as the test server), and screenshots kept for the docs.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";

import type { Page } from "@playwright/test";

import { expect } from "./fixtures";

const ROOT = path.join(__dirname, "..", "..");
const PORT = Number(process.env.VIDGATE_E2E_PORT ?? 8765);

/** Give the account with this phone a role, as an operator would with the CLI (see serve.sh). */
export function grantRole(phone: string, role: "user" | "support" | "admin"): void {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VIDGATE_ENV: "development",
    VIDGATE_DATA_DIR: `web/.e2e/server-${PORT}`,
    VIDGATE_LOG_LEVEL: "WARNING",
  };
  delete env.VIDGATE_DATABASE_URL;
  const out = execFileSync(path.join(ROOT, ".venv", "bin", "vidgate"), ["user", "role", phone, role, "--reason", "e2e: console test"], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(out).toContain(`is now ${role}`);
}

export const DOCS_SCREENSHOTS = path.join(ROOT, "docs", "screenshots");

/** A desktop screenshot of a console page for the docs: docs/screenshots/console-<name>.png. */
export async function docShot(page: Page, name: string): Promise<void> {
  mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(DOCS_SCREENSHOTS, `console-${name}.png`), fullPage: true });
}

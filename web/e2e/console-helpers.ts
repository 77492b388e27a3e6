// Helpers of the console spec: roles given at the command line (`vidgate user role`, against the
// same data dir and embedded database as the test server), and screenshots kept for the docs.
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";

import type { Page } from "@playwright/test";

import { expect, SCREENSHOT_DIR } from "./fixtures";

const ROOT = path.join(__dirname, "..", "..");
const PORT = Number(process.env.VIDGATE_E2E_PORT ?? 8765);

/** Give the account with this phone a role, as an operator would with the CLI (see serve.sh), on
 * the test server (or the one started on `port`). */
export function grantRole(phone: string, role: "user" | "support" | "admin", port = PORT): void {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VIDGATE_ENV: "development",
    VIDGATE_DATA_DIR: `web/.e2e/server-${port}`,
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

// The docs' copies are refreshed only when asked (VIDGATE_DOC_SCREENSHOTS=1), so a test run leaves
// the tracked files alone; otherwise they go with the run's other screenshots.
export const DOCS_SCREENSHOTS = process.env.VIDGATE_DOC_SCREENSHOTS
  ? path.join(ROOT, "docs", "screenshots")
  : SCREENSHOT_DIR;

/** A desktop screenshot of a console page: console-<name>.png, in docs/screenshots when asked. */
export async function docShot(page: Page, name: string): Promise<void> {
  mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(DOCS_SCREENSHOTS, `console-${name}.png`), fullPage: true });
}

/** The TOTP code an authenticator app shows for a base32 secret (RFC 6238: SHA-1, 30 s, 6 digits). */
export function totp(secret: string, at = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) {
    const value = alphabet.indexOf(char);
    if (value < 0) continue;
    bits += value.toString(2).padStart(5, "0");
  }
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(Number.parseInt(bits.slice(i, i + 8), 2));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", Buffer.from(bytes)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

/** A second test server (serve.sh on another port, its own data dir) with extra settings. */
export async function startServer(port: number, env: Record<string, string>): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn("bash", ["e2e/serve.sh", String(port)], {
    cwd: path.join(ROOT, "web"),
    env: { ...process.env, ...env },
    stdio: "ignore",
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 150_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server on ${port} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGTERM");
      throw new Error(`the server on ${port} did not start`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const force = setTimeout(() => child.kill("SIGKILL"), 20_000);
        child.once("exit", () => {
          clearTimeout(force);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

// What the browser tests share: a page per test, API access for setup and checks, sign-in by SMS
// through the development outbox, sample media, and a screenshot of every page visited.
import { test as base, expect, type APIRequestContext, type Page } from "@playwright/test";
import path from "node:path";

export { expect };

export const SCREENSHOT_DIR = path.join(__dirname, "..", process.env.VIDGATE_E2E_OUTPUT ?? "test-results", "screenshots");

let phoneCounter = 0;

/** A phone number no other test has used (the SMS limits are per number). */
export function uniquePhone(): string {
  phoneCounter += 1;
  const digits = String(Date.now() % 1_000_000).padStart(6, "0") + String(phoneCounter).padStart(2, "0");
  return `86-139${digits}`;
}

export async function webConfig(request: APIRequestContext): Promise<{ api_key: string }> {
  const response = await request.get("/api/web/config");
  expect(response.ok()).toBeTruthy();
  return response.json();
}

/** The latest SMS code sent to `phone`, read from the development outbox. */
export async function latestSmsCode(request: APIRequestContext, phone: string): Promise<string> {
  const { api_key } = await webConfig(request);
  let code = "";
  await expect
    .poll(async () => {
      const response = await request.get(`/api/_dev/sms/outbox?phone_number=${encodeURIComponent(phone)}`, {
        headers: { "X-API-Key": api_key },
      });
      const body = await response.json();
      code = body.messages?.[0]?.code ?? "";
      return code;
    })
    .not.toBe("");
  return code;
}

/** Sign in through the sign-in page with an SMS code; ends on the dashboard. */
export async function signInBySms(page: Page, phone = uniquePhone()): Promise<string> {
  await page.goto("/login/");
  await page.getByLabel(/phone number/i).fill(phone);
  await page.getByRole("button", { name: /send code/i }).click();
  const code = await latestSmsCode(page.request, phone);
  await page.getByLabel(/verification code/i).fill(code);
  await page.getByRole("button", { name: /^sign in$/i }).click();
  await expect(page.getByRole("heading", { level: 1, name: /dashboard/i })).toBeVisible();
  return phone;
}

/** The access token the page holds, for API calls made on the user's behalf in checks. */
export async function accessToken(page: Page): Promise<string> {
  const token = await page.evaluate(() => localStorage.getItem("access_token"));
  expect(token).toBeTruthy();
  return token as string;
}

/** Authorised GET as the signed-in user, for assertions on what the server holds. */
export async function apiGet(page: Page, url: string): Promise<any> {
  const { api_key } = await webConfig(page.request);
  const response = await page.request.get(url, {
    headers: { "X-API-Key": api_key, Authorization: `Bearer ${await accessToken(page)}` },
  });
  expect(response.status(), await response.text()).toBe(200);
  return response.json();
}

/** Keep a full-page screenshot under test-results/screenshots/<name>.png. */
export async function snap(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

export const SAMPLES = path.join(__dirname, "..", ".e2e", "samples");

export const test = base;

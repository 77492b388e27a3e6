// Helpers of the account and payment specs: calls as the signed-in user or with a personal key,
// the payment emulators' control endpoints, and money as the app shows it (en-US).
import { expect, type APIRequestContext, type Page } from "@playwright/test";

import { accessToken, apiGet, webConfig } from "./fixtures";

/** The credits the server holds for the signed-in user. */
export async function serverCredits(page: Page): Promise<number> {
  return (await apiGet(page, "/api/users/credits")).credits;
}

/** A call as the signed-in user with any method; answers the status and the JSON body. */
export async function apiCall(
  page: Page,
  method: "GET" | "POST" | "PUT" | "DELETE",
  url: string,
  data?: unknown,
): Promise<{ status: number; body: any }> {
  const { api_key } = await webConfig(page.request);
  const response = await page.request.fetch(url, {
    method,
    headers: { "X-API-Key": api_key, Authorization: `Bearer ${await accessToken(page)}` },
    data,
  });
  const text = await response.text();
  return { status: response.status(), body: text ? JSON.parse(text) : null };
}

/** POST to an emulator's control endpoint (development server only). */
export async function emulatorControl(request: APIRequestContext, path: string, data: unknown): Promise<any> {
  const response = await request.post(path, { data });
  expect(response.status(), await response.text()).toBe(200);
  return response.json();
}

/** The pack of `credits` credits as the server sells it. */
export async function pack(request: APIRequestContext, credits: number): Promise<{ credits: number; prices: Record<string, number>; providers: string[] }> {
  const response = await request.get("/api/payments/packages");
  expect(response.ok()).toBeTruthy();
  const found = (await response.json()).packages.find((p: { credits: number }) => p.credits === credits);
  expect(found, `a pack of ${credits} credits is on sale`).toBeTruthy();
  return found;
}

/** An amount the way the app writes it in English ("CN¥50.00"). */
export function money(amount: number, currency: string): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(amount);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The page has no horizontal scrollbar at its current width (the failure names what sticks out). */
export async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const { overflow, offenders } = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const offenders: string[] = [];
    for (const element of Array.from(document.body.querySelectorAll<HTMLElement>("*"))) {
      const box = element.getBoundingClientRect();
      if (box.right > width + 1 && box.width > 1) {
        offenders.push(`${element.tagName.toLowerCase()}.${element.className} (${Math.round(box.right)}px)`);
      }
    }
    return { overflow: document.documentElement.scrollWidth - width, offenders: offenders.slice(0, 8) };
  });
  expect(overflow, `the page is not wider than the screen; sticking out: ${offenders.join(", ")}`).toBeLessThanOrEqual(0);
}

/** GET with a token kept from earlier (the page may be on another origin, e.g. a checkout page). */
export async function apiGetWithToken(request: APIRequestContext, token: string, url: string): Promise<any> {
  const { api_key } = await webConfig(request);
  const response = await request.get(url, { headers: { "X-API-Key": api_key, Authorization: `Bearer ${token}` } });
  expect(response.status(), await response.text()).toBe(200);
  return response.json();
}

// When the refresh of an expired access token fails: a network error or a server error (5xx) is
// passing, so the tokens stay, the user stays signed in, and a later call renews the session; only
// a refusal (401, or a 422 for a token that is not one) signs out. The access token is made to
// look expired by replacing it with one the server refuses, so every call really meets a 401 and
// the client really asks POST /api/auth/refresh; that endpoint is made to fail with page.route.
import type { Page } from "@playwright/test";

import { expect, signInBySms, test } from "./fixtures";

const BOGUS_ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.not-a-valid-signature";
const NETWORK_ERROR = "The server could not be reached. Check your connection and try again.";

test.describe.configure({ timeout: 180_000 });

type Stored = { access: string | null; refresh: string | null };

function stored(page: Page): Promise<Stored> {
  return page.evaluate(() => ({
    access: localStorage.getItem("access_token"),
    refresh: localStorage.getItem("refresh_token"),
  }));
}

/** The access token stops working (as an expired one does); the refresh token stays. */
async function expireAccessToken(page: Page): Promise<void> {
  await page.evaluate((bogus) => localStorage.setItem("access_token", bogus), BOGUS_ACCESS);
}

/** Go to a page through the signed-in navigation (the app stays loaded, with its user). */
async function navigate(page: Page, name: string): Promise<void> {
  await page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name, exact: true }).click();
}

/** Every call to the refresh endpoint the page makes, routed or not. */
function countRefreshes(page: Page): { count: number } {
  const seen = { count: 0 };
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/api/auth/refresh") seen.count += 1;
  });
  return seen;
}

async function expectSignedInShell(page: Page): Promise<void> {
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await expect(page.getByTestId("header-balance")).toHaveText("100 credits");
  await expect(page).not.toHaveURL(/\/login\//);
}

test("a refresh that fails for a network error or a 503 keeps the user signed in, and the next call renews the session", async ({ page }) => {
  await signInBySms(page);
  const original = await stored(page);
  expect(original.access).toBeTruthy();
  expect(original.refresh).toBeTruthy();
  const refreshes = countRefreshes(page);
  const unauthorized: string[] = [];
  page.on("response", (response) => {
    if (response.status() === 401) unauthorized.push(new URL(response.url()).pathname);
  });

  // 1. The refresh meets a network error: the call fails as a network error, nothing else.
  await page.route("**/api/auth/refresh", (route) => route.abort("internetdisconnected"), { times: 1 });
  await expireAccessToken(page);
  await navigate(page, "History");
  await expect(page.getByRole("heading", { level: 1, name: "History" })).toBeVisible();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText(NETWORK_ERROR);
  await expectSignedInShell(page);
  expect(refreshes.count).toBe(1);
  expect(unauthorized).toContain("/api/tasks/user/tasks"); // the token was really refused
  expect(await stored(page)).toEqual({ access: BOGUS_ACCESS, refresh: original.refresh });

  // 2. The refresh answers 503. The dashboard asks for the tasks and the user at once: both
  // meet a 401 and share the one refresh, held until both have been refused.
  unauthorized.length = 0;
  await page.route(
    "**/api/auth/refresh",
    async (route) => {
      await expect.poll(() => unauthorized.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
      await route.fulfill({ status: 503, json: { detail: "Database unavailable" } });
    },
    { times: 1 },
  );
  await navigate(page, "Dashboard");
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText("Database unavailable");
  await expectSignedInShell(page);
  expect([...unauthorized].sort()).toEqual(["/api/auth/me", "/api/tasks/user/tasks"]);
  expect(refreshes.count).toBe(2);
  expect(await stored(page)).toEqual({ access: BOGUS_ACCESS, refresh: original.refresh });

  // 3. The refresh endpoint works again: the next call renews the tokens and succeeds.
  await navigate(page, "History");
  await expect(page.getByTestId("history-total")).toBeVisible();
  await expect(page.getByRole("main").getByRole("alert")).toHaveCount(0);
  await expectSignedInShell(page);
  expect(refreshes.count).toBe(3);
  const renewed = await stored(page);
  expect(renewed.access).not.toBe(BOGUS_ACCESS);
  expect(renewed.refresh).not.toBe(original.refresh); // refresh tokens rotate
  const { api_key } = await (await page.request.get("/api/web/config")).json();
  const me = await page.request.get("/api/auth/me", {
    headers: { "X-API-Key": api_key, Authorization: `Bearer ${renewed.access}` },
  });
  expect(me.status()).toBe(200);
});

test("a page opened while the refresh fails waits, then comes up signed in once it works", async ({ page }) => {
  await signInBySms(page);
  const original = await stored(page);
  const refreshes = countRefreshes(page);
  const visited: string[] = [];
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) visited.push(new URL(frame.url()).pathname);
  });

  // The first refresh of the fresh page answers 503 (with a Retry-After of one second, which
  // the client honours), the next one is the server's.
  let failedAt = 0;
  await page.route(
    "**/api/auth/refresh",
    async (route) => {
      failedAt = Date.now();
      await route.fulfill({ status: 503, headers: { "Retry-After": "1" }, json: { detail: "Database unavailable" } });
    },
    { times: 1 },
  );
  let renewedAt = 0;
  page.on("response", (response) => {
    if (new URL(response.url()).pathname === "/api/auth/refresh" && response.status() === 200) renewedAt = Date.now();
  });
  await expireAccessToken(page);
  await page.goto("/credits/");
  await expect(page.getByRole("heading", { level: 1, name: "Credits" })).toBeVisible({ timeout: 60_000 });
  await expectSignedInShell(page);

  expect(refreshes.count).toBe(2);
  expect(renewedAt - failedAt).toBeGreaterThanOrEqual(1000); // not before the Retry-After
  expect(visited.some((path) => path.startsWith("/login"))).toBe(false);
  const renewed = await stored(page);
  expect(renewed.access).not.toBe(BOGUS_ACCESS);
  expect(renewed.refresh).not.toBe(original.refresh);
});

for (const [status, detail] of [
  [401, "Invalid or expired refresh token"],
  [422, [{ loc: ["body", "refresh_token"], msg: "Field required", type: "missing" }]],
] as const) {
  test(`a refresh refused with ${status} signs the user out and lands on the sign-in page`, async ({ page }) => {
    await signInBySms(page);
    const refreshes = countRefreshes(page);
    await page.route(
      "**/api/auth/refresh",
      (route) =>
        route.fulfill({
          status,
          headers: status === 401 ? { "WWW-Authenticate": "Bearer" } : {},
          json: { detail },
        }),
      { times: 1 },
    );
    await expireAccessToken(page);
    await navigate(page, "History");
    await expect(page).toHaveURL(/\/login\/\?next=%2Fhistory%2F/);
    await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
    await expect(page.getByLabel(/phone number/i)).toBeVisible();
    await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
    expect(await stored(page)).toEqual({ access: null, refresh: null });
    expect(refreshes.count).toBe(1);
  });
}

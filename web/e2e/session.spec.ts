// Tokens handled for the user: an expired access token is refreshed once, transparently, however
// many requests saw the 401; a refused refresh signs out; signing out in one tab signs out all.
import { expect, signInBySms, test } from "./fixtures";

const BOGUS_ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.not-a-valid-signature";

test("an expired access token is refreshed once and the page just works", async ({ page }) => {
  await signInBySms(page);
  const before = await page.evaluate(() => localStorage.getItem("refresh_token"));
  await page.evaluate((bogus) => localStorage.setItem("access_token", bogus), BOGUS_ACCESS);

  const refreshes: string[] = [];
  const unauthorized: string[] = [];
  page.on("request", (request) => {
    if (request.url().endsWith("/api/auth/refresh")) refreshes.push(request.url());
  });
  page.on("response", (response) => {
    if (response.status() === 401) unauthorized.push(new URL(response.url()).pathname);
  });

  await page.goto("/");
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("header-balance")).toHaveText("100 credits");
  await page.goto("/credits/");
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();

  expect(unauthorized.length).toBeGreaterThan(0); // the bogus token was really refused
  expect(refreshes).toHaveLength(1);
  const after = await page.evaluate(() => ({
    access: localStorage.getItem("access_token"),
    refresh: localStorage.getItem("refresh_token"),
  }));
  expect(after.access).not.toBe(BOGUS_ACCESS);
  expect(after.refresh).not.toBe(before); // refresh tokens rotate
  const me = await page.request.get("/api/auth/me", { headers: { Authorization: `Bearer ${after.access}` } });
  expect(me.status()).toBe(200);
});

test("a refused refresh signs the user out", async ({ page }) => {
  await signInBySms(page);
  await page.evaluate((bogus) => {
    localStorage.setItem("access_token", bogus);
    localStorage.setItem("refresh_token", "not-a-refresh-token");
  }, BOGUS_ACCESS);
  await page.goto("/history/");
  await expect(page).toHaveURL(/\/login\/\?next=%2Fhistory%2F/);
  await expect(page.getByLabel(/phone number/i)).toBeVisible();
  expect(await page.evaluate(() => [localStorage.getItem("access_token"), localStorage.getItem("refresh_token")])).toEqual([
    null,
    null,
  ]);
});

test("signing out in one tab signs out the others", async ({ page, context }) => {
  await signInBySms(page);
  const other = await context.newPage();
  await other.goto("/credits/");
  await expect(other.getByRole("heading", { level: 1 })).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login\//);
  await expect(other).toHaveURL(/\/login\//);
  await expect(other.getByRole("button", { name: "Sign out" })).toHaveCount(0);
});

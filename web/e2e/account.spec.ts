// The account pages in the browser: credits and their CSV, API keys, the webhook secret, the
// profile, and deleting the account.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";

import { accessToken, apiGet, expect, signInBySms, snap, test, webConfig } from "./fixtures";
import { expectNoHorizontalScroll } from "./account-helpers";

test("credits: the signup bonus in the ledger and in the CSV export", async ({ page }) => {
  await signInBySms(page);
  const server = await apiGet(page, "/api/users/credits");
  expect(server).toMatchObject({ credits: 100, total_earned: 100, total_spent: 0, credits_reserved: 0, available: 100 });

  await page.goto("/credits/");
  await expect(page.getByRole("heading", { level: 1, name: "Credits" })).toBeVisible();
  await expect(page.getByTestId("credits-balance")).toContainText("100");
  await expect(page.getByTestId("credits-available")).toContainText("100");
  await expect(page.getByTestId("credits-earned")).toContainText("100");
  await expect(page.getByTestId("credits-spent").locator(".stat")).toHaveText("0");
  const bonus = page.getByRole("row").filter({ hasText: "Welcome bonus" });
  await expect(bonus).toHaveCount(1);
  await expect(bonus.getByRole("cell").nth(2)).toHaveText("+100");
  await expect(bonus.getByRole("cell").nth(3)).toHaveText("100");
  await expect(page.getByText(/Entries: 1\./)).toBeVisible();
  await snap(page, "credits");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Export CSV" }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^vidgate-credits-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = await readFile(await download.path(), "utf8");
  const lines = csv.trim().split(/\r?\n/);
  expect(lines[0]).toBe("id,created_at,kind,delta,reserved_delta,balance_after,reserved_after,reference,note");
  expect(lines).toHaveLength(2);
  expect(lines[1]).toMatch(/^\d+,\d{4}-\d{2}-\d{2}T[^,]+,signup_bonus,100,0,100,0,,Welcome credits$/);
  await expect(page.getByText(/Your CSV file has been downloaded/)).toBeVisible();

  await page.setViewportSize({ width: 375, height: 800 });
  await expectNoHorizontalScroll(page);
});

test("API keys: created and shown once, used, revoked and refused", async ({ page }) => {
  await signInBySms(page);
  const { api_key: clientKey } = await webConfig(page.request);
  const name = `render server ${Date.now() % 100000}`;
  const probe = `/api/videos/tasks/${randomUUID()}`; // any task id: the answer tells whether the key works

  await page.goto("/keys/");
  await expect(page.getByText("You have no API keys yet.")).toBeVisible();
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByText("Give the key a name.")).toBeVisible(); // nothing sent without a name
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByRole("button", { name: "Create key" }).click();

  const field = page.getByLabel("Your new API key");
  await expect(field).toBeVisible();
  const key = await field.inputValue();
  expect(key).toMatch(/^vg_/);
  expect(key).not.toBe(clientKey);
  await expect(page.getByText(/It will not be shown again/)).toBeVisible();
  await expect(page.getByRole("button", { name: "Copy" })).toBeVisible();
  const row = page.getByRole("row").filter({ hasText: name });
  await expect(row).toContainText(`${key.slice(0, 10)}…`);
  await snap(page, "keys-created");

  // The key works on its own: the server knows who it is (the task is simply not theirs).
  const works = await page.request.get(probe, { headers: { "X-API-Key": key } });
  expect(works.status()).toBe(404);
  expect((await apiGet(page, "/api/users/api-keys")).api_keys.map((k: { name: string }) => k.name)).toEqual([name]);

  // Shown once: gone after "saved", and never again after a reload.
  await page.getByRole("button", { name: "I have saved it" }).click();
  await expect(field).toHaveCount(0);
  await page.reload();
  await expect(row).toBeVisible();
  expect(await page.content()).not.toContain(key);

  // Revoke, with a confirmation.
  await row.getByRole("button", { name: `Revoke ${name}` }).click();
  const dialog = page.getByRole("dialog", { name: `Revoke “${name}”?` });
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await expect(row).toBeVisible();
  await row.getByRole("button", { name: `Revoke ${name}` }).click();
  await dialog.getByRole("button", { name: "Revoke key" }).click();
  await expect(page.getByText(`The key “${name}” has been revoked.`)).toBeVisible();
  await expect(row).toHaveCount(0);
  await expect(page.getByText("You have no API keys yet.")).toBeVisible();
  expect((await apiGet(page, "/api/users/api-keys")).api_keys).toEqual([]);
  const refused = await page.request.get(probe, { headers: { "X-API-Key": key } });
  expect(refused.status()).toBe(401);
});

test("webhooks: the signing secret is shown and rotated", async ({ page }) => {
  await signInBySms(page);
  await page.goto("/webhooks/");
  const shown = page.getByTestId("webhook-secret");
  await expect(shown).toContainText("•"); // hidden until asked for
  await page.getByRole("button", { name: "Show secret" }).click();
  await expect(shown).toHaveText(/^whsec_[A-Za-z0-9+/=]{20,}$/);
  const first = (await shown.textContent()) as string;
  expect((await apiGet(page, "/api/users/webhook-secret")).secret).toBe(first);
  await expect(page.getByText("webhook-signature", { exact: true })).toBeVisible();
  await snap(page, "webhooks");

  await page.getByRole("button", { name: "Rotate secret…" }).click();
  const dialog = page.getByRole("dialog", { name: "Make a new signing secret?" });
  await dialog.getByRole("button", { name: "Rotate secret" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByText("A new secret has been made.", { exact: false })).toBeVisible();
  await expect(shown).not.toHaveText(first);
  const second = (await shown.textContent()) as string;
  expect(second).toMatch(/^whsec_/);
  const server = await apiGet(page, "/api/users/webhook-secret");
  expect(server.secret).toBe(second);
  expect(server.previous_secret_expires_at).toBeTruthy();
  await expect(page.getByText(/Your previous secret also signs every delivery until/)).toBeVisible();
});

test("profile: the server's validation is shown, a new username persists", async ({ page }) => {
  const phone = await signInBySms(page);
  await page.goto("/profile/");
  await expect(page.getByTestId("profile-phone")).toContainText(phone.split("-")[1].slice(-8));
  const username = page.getByLabel("Username");
  await expect(username).not.toHaveValue("");

  await username.fill("ab");
  await page.getByLabel("Avatar URL").fill("not a url");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page.getByText(/at least 3 characters/)).toBeVisible();
  await expect(username).toHaveAttribute("aria-invalid", "true");
  await expect(page.getByLabel("Avatar URL")).toHaveAttribute("aria-invalid", "true");
  const unchanged = await apiGet(page, "/api/users/profile");
  expect(unchanged.username).not.toBe("ab");

  const wanted = `e2e-user-${Date.now() % 1000000}`;
  await username.fill(wanted);
  await page.getByLabel("Avatar URL").fill("");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page.getByText("Your profile has been saved.")).toBeVisible();
  await expect(username).not.toHaveAttribute("aria-invalid", "true");
  expect((await apiGet(page, "/api/users/profile")).username).toBe(wanted);
  await page.reload();
  await expect(page.getByLabel("Username")).toHaveValue(wanted);
  await snap(page, "profile");
});

test("deleting the account signs out and the old token is refused", async ({ page }) => {
  await signInBySms(page);
  const token = await accessToken(page);
  await page.goto("/profile/");
  await page.getByRole("button", { name: "Delete my account…" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete your account?" });
  const confirm = dialog.getByRole("button", { name: "Delete account" });
  await expect(confirm).toBeDisabled();
  const word = dialog.getByLabel("Type DELETE to confirm");
  await expect(word).toBeFocused();
  await word.fill("delete");
  await expect(confirm).toBeDisabled();
  await word.fill("DELETE");
  await confirm.click();

  await expect(page).toHaveURL(/\/login\/$/);
  await expect(page.getByLabel(/phone number/i)).toBeVisible();
  expect(await page.evaluate(() => localStorage.getItem("access_token"))).toBeNull();
  const { api_key } = await webConfig(page.request);
  const me = await page.request.get("/api/auth/me", { headers: { "X-API-Key": api_key, Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(401);
});

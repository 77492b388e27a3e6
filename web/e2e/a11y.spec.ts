// Every page checked by axe-core against WCAG 2.1 A and AA (labels, names, contrast, landmarks,
// language), signed out and signed in, in English and in Chinese, at desktop and phone width.
import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";

import { accessToken, expect, signInBySms, test, webConfig } from "./fixtures";
import { serverTask } from "./task-helpers";

const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

async function expectAccessible(page: Page, what: string): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(TAGS).analyze();
  const found = results.violations.map(
    (violation) =>
      `${violation.id} (${violation.impact}): ${violation.help}\n` +
      violation.nodes.map((node) => `    ${node.target.join(" ")}`).join("\n"),
  );
  expect(found, `${what}: accessibility problems`).toEqual([]);
}

async function aTask(page: Page): Promise<string> {
  const { api_key } = await webConfig(page.request);
  const response = await page.request.post("/api/videos/text-to-video", {
    headers: { "X-API-Key": api_key, Authorization: `Bearer ${await accessToken(page)}` },
    data: { prompt: "a lighthouse at dusk, waves below", quality: "standard", aspect_ratio: "landscape" },
  });
  expect(response.status(), await response.text()).toBe(200);
  const { task_id } = await response.json();
  await expect.poll(async () => (await serverTask(page, task_id)).status, { timeout: 30_000 }).toBe("SUCCEEDED");
  return task_id;
}

const PAGES: [string, string][] = [
  ["dashboard", "/"],
  ["create", "/create/?kind=animate-move"],
  ["create text", "/create/?kind=text-to-video"],
  ["history", "/history/"],
  ["credits", "/credits/"],
  ["buy", "/buy/"],
  ["redeem", "/redeem/"],
  ["keys", "/keys/"],
  ["webhooks", "/webhooks/"],
  ["profile", "/profile/"],
];

test("the sign-in page is accessible in both languages", async ({ page }) => {
  await page.goto("/login/");
  await expect(page.getByLabel(/phone number/i)).toBeVisible();
  await expectAccessible(page, "sign-in (en)");
  await page.getByLabel("Language").selectOption("zh");
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  await expectAccessible(page, "sign-in (zh)");
});

test("every signed-in page is accessible, on a desktop and on a phone", async ({ page }) => {
  await signInBySms(page);
  const taskId = await aTask(page);
  const pages: [string, string][] = [...PAGES, ["task", `/task/?id=${taskId}`]];
  for (const [width, height] of [
    [1280, 800],
    [375, 740],
  ]) {
    await page.setViewportSize({ width, height });
    for (const [name, path] of pages) {
      await page.goto(path);
      await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
      await expect(page.getByRole("status").filter({ hasText: /^(Loading…|…)$/ })).toHaveCount(0);
      await expectAccessible(page, `${name} at ${width} px`);
    }
  }
});

test("the pages are accessible in Chinese", async ({ page }) => {
  await signInBySms(page);
  await page.getByLabel("Language").selectOption("zh");
  for (const [name, path] of PAGES) {
    await page.goto(path);
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
    await expectAccessible(page, `${name} (zh)`);
  }
});

test("signing in works with the keyboard alone", async ({ page }) => {
  await page.goto("/login/");
  const phone = `86-137${String(Date.now() % 100_000_000).padStart(8, "0")}`;
  await page.getByLabel(/phone number/i).focus();
  await page.keyboard.type(phone);
  await page.keyboard.press("Enter");
  const code = page.getByLabel(/verification code/i);
  await expect(code).toBeFocused();
  const { api_key } = await webConfig(page.request);
  let sent = "";
  await expect
    .poll(async () => {
      const response = await page.request.get(`/api/_dev/sms/outbox?phone_number=${phone}`, { headers: { "X-API-Key": api_key } });
      sent = (await response.json()).messages?.[0]?.code ?? "";
      return sent;
    })
    .not.toBe("");
  await page.keyboard.type(sent);
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  // On a fresh page, the first Tab reaches the skip link.
  await page.goto("/");
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
});

// The console's money pages (/admin/payments/, /admin/payment/, /admin/codes/, /admin/codes/batch/):
// an admin refunds part of a customer's Stripe payment and sees the refund and the customer's new
// balance; an admin creates a batch of codes, exports it as CSV, and a customer redeems one; a
// support operator reads them but sees no refund, create or disable controls; and every one of these
// pages passes axe-core on a desktop and a phone, in English and in Chinese.
import AxeBuilder from "@axe-core/playwright";
import type { Browser, Page } from "@playwright/test";

import { apiCall, expectNoHorizontalScroll, money, pack } from "./account-helpers";
import { docShot, grantRole } from "./console-helpers";
import { apiGet, expect, signInBySms, test, uniquePhone } from "./fixtures";
import { serverCredits } from "./task-helpers";

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

/** Sign in a new account and make it an operator; the console link shows. */
async function operator(page: Page, role: "admin" | "support" = "admin"): Promise<string> {
  const phone = await signInBySms(page);
  grantRole(phone, role);
  await page.reload();
  await expect(page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: "Console" })).toBeVisible();
  return phone;
}

/** A plain user in a browser context of their own. */
async function customer(browser: Browser): Promise<{ page: Page; phone: string; id: string; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const phone = await signInBySms(page, uniquePhone());
  const me = await apiGet(page, "/api/auth/me");
  return { page, phone, id: me.id, close: () => context.close() };
}

async function loaded(page: Page): Promise<void> {
  await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: /^(Loading…|加载中…|…)$/ })).toHaveCount(0);
}

async function giveReason(page: Page, reason: string, confirm: string | RegExp): Promise<void> {
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  await dialog.getByLabel("Reason").fill(reason);
  await dialog.getByRole("button", { name: confirm }).click();
  await expect(dialog).toBeHidden();
}

/** The customer buys the 1,100-credit pack through the emulated Stripe Checkout; answers its id. */
async function buyWithStripe(page: Page): Promise<{ paymentId: string; price: number }> {
  const before = (await serverCredits(page)).credits;
  const standard = await pack(page.request, 1100);
  const price = money(standard.prices.CNY, "CNY");
  await page.goto("/buy/");
  await page.getByRole("radio", { name: /^1,100 credits/ }).check();
  await page.getByRole("radio", { name: /Card \(Stripe\)/ }).check();
  await page.getByRole("button", { name: `Continue to Stripe to pay ${price}` }).click();
  await expect(page).toHaveURL(/\/_emulator\/stripe\/c\/pay\/cs_/);
  await page.getByRole("button", { name: `Pay ${price}`, exact: true }).click();
  await expect(page).toHaveURL(/\/buy\/\?payment=[0-9a-f-]{36}$/);
  const paymentId = new URL(page.url()).searchParams.get("payment") as string;
  await expect(page.getByTestId("payment-status")).toHaveText("Payment received: 1,100 credits have been added to your balance.");
  await expect.poll(async () => (await serverCredits(page)).credits).toBe(before + 1100);
  return { paymentId, price: standard.prices.CNY };
}

/** A batch of codes made through the API (as an admin). */
async function batchByApi(page: Page, count = 2): Promise<{ batch: { id: string }; codes: { id: string; code: string }[] }> {
  const made = await apiCall(page, "POST", "/api/admin/codes/batches", { credits: 20, count, note: "e2e", reason: "e2e: a batch to look at" });
  expect(made.status).toBe(201);
  return made.body;
}

test("an admin refunds part of a customer's Stripe payment and sees the refund and the customer's new balance", async ({ page, browser }) => {
  const target = await customer(browser);
  const { paymentId, price } = await buyWithStripe(target.page);
  const paid = (await serverCredits(target.page)).credits;

  await operator(page, "admin");
  await page.goto("/admin/");
  await loaded(page);
  await page.getByRole("navigation", { name: "Console navigation" }).getByRole("link", { name: "Payments" }).click();
  await expect(page).toHaveURL(/\/admin\/payments\/$/);
  await loaded(page);
  await page.getByLabel("User id").fill(target.id);
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`user_id=${target.id}`));
  await expect(page.getByTestId("payments-total")).toHaveText("1 found");
  const row = page.locator(`tr[data-payment-id="${paymentId}"]`);
  await expect(row).toContainText("Paid");
  await expect(row).toContainText(money(price, "CNY"));
  await docShot(page, "payments");
  await row.getByRole("link", { name: paymentId.slice(0, 8) + "…" }).click();
  await expect(page).toHaveURL(new RegExp(`/admin/payment/\\?id=${paymentId}$`));
  await loaded(page);
  await expect(page.getByTestId("payment-status")).toHaveText("Paid");
  await expect(page.getByTestId("payment-refundable")).toHaveText(money(price, "CNY"));
  await expect(page.getByTestId("payment-events")).toBeVisible();

  // More than was paid is refused before anything is sent.
  await page.getByLabel("Amount to refund (CNY)").fill(String(price + 1));
  await page.getByRole("button", { name: "Refund", exact: true }).click();
  await expect(page.getByText(`Enter an amount above zero and no more than ${money(price, "CNY")}.`)).toBeVisible();
  await expect(page.getByRole("dialog")).toHaveCount(0);

  // A quarter of it, in yuan: the credits go back in proportion (rounded down).
  const part = Math.round(price * 25) / 100;
  const partMinor = Math.round(part * 100);
  const taken = Math.floor((1100 * partMinor) / Math.round(price * 100));
  await page.getByLabel("Amount to refund (CNY)").fill(part.toFixed(2));
  await page.getByRole("button", { name: "Refund", exact: true }).click();
  await expect(page.getByTestId("refund-confirm-amount")).toHaveText(money(part, "CNY"));
  await giveReason(page, "Customer asked for part back", "Refund");
  await expect(page.getByTestId("console-notice")).toHaveText(
    `Refund succeeded: ${money(part, "CNY")}, ${taken.toLocaleString("en-US")} credits taken back.`,
  );
  await expect(page.getByTestId("payment-status")).toHaveText("Partly refunded");
  await expect(page.getByTestId("payment-refundable")).toHaveText(money((Math.round(price * 100) - partMinor) / 100, "CNY"));
  const refund = page.getByTestId("payment-refunds").locator("tbody tr").first();
  await expect(refund).toContainText("Refund");
  await expect(refund).toContainText("succeeded");
  await expect(refund).toContainText("Customer asked for part back");
  await expect(refund.getByTestId("refund-taken")).toHaveText(taken.toLocaleString("en-US"));
  await expect(refund.getByTestId("refund-shortfall")).toHaveText("0");
  await expect(page.getByRole("button", { name: "Retry" })).toHaveCount(0);
  await docShot(page, "payment");
  expect((await serverCredits(target.page)).credits).toBe(paid - taken);

  // The customer's page: the new balance, and the payment linked back.
  await page.getByTestId("admin-payment-facts").getByRole("link", { name: target.id }).click();
  await loaded(page);
  await expect(page.getByTestId("admin-balance")).toHaveText((paid - taken).toLocaleString("en-US"));
  await expect(page.locator(`tr[data-payment-id="${paymentId}"]`)).toContainText("Partly refunded");
  await page.getByRole("link", { name: "All of this user's payments" }).click();
  await expect(page).toHaveURL(new RegExp(`/admin/payments/\\?user_id=${target.id}$`));
  await expect(page.getByTestId("payments-total")).toHaveText("1 found");
  await target.close();
});

test("an admin creates a batch of codes, exports it as CSV, and a customer redeems one", async ({ page, browser }) => {
  await operator(page, "admin");
  await page.goto("/admin/");
  await loaded(page);
  await page.getByRole("navigation", { name: "Console navigation" }).getByRole("link", { name: "Codes" }).click();
  await expect(page).toHaveURL(/\/admin\/codes\/$/);
  await loaded(page);

  // Bad numbers are refused before the dialog.
  await page.getByLabel("Codes", { exact: true }).fill("0");
  await page.getByRole("button", { name: "Create a batch" }).click();
  await expect(page.getByText("Enter whole numbers: credits 1 or more, codes from 1 to 10,000, uses 1 or more.")).toBeVisible();
  await expect(page.getByRole("dialog")).toHaveCount(0);

  await page.getByLabel("Credits each").fill("75");
  await page.getByLabel("Codes", { exact: true }).fill("3");
  await page.getByLabel("Note").fill("Spring campaign");
  await page.getByRole("button", { name: "Create a batch" }).click();
  await expect(page.getByRole("dialog")).toContainText("3 codes worth 75 credits each.");
  await giveReason(page, "Spring campaign codes", "Create a batch");
  await expect(page.getByTestId("console-notice")).toHaveText("Batch created: 3 codes.");
  const codes = await page.getByTestId("new-codes").locator("li").allTextContents();
  expect(codes).toHaveLength(3);
  for (const code of codes) expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  const batchId = (await page.getByTestId("new-batch").getAttribute("data-batch-id")) as string;
  const listed = page.locator(`tr[data-batch-id="${batchId}"]`);
  await expect(listed).toContainText("Spring campaign");
  await expect(listed).toContainText("Active");
  await docShot(page, "codes");

  await page.getByRole("link", { name: "Open the batch" }).click();
  await expect(page).toHaveURL(new RegExp(`/admin/codes/batch/\\?id=${batchId}$`));
  await loaded(page);
  await expect(page.getByTestId("batch-codes").locator("tbody tr")).toHaveCount(3);

  // The CSV: a header and one row per code.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  expect(download.suggestedFilename()).toBe(`codes-${batchId}.csv`);
  let csv = "";
  for await (const chunk of await download.createReadStream()) csv += chunk.toString();
  const lines = csv.trim().split(/\r?\n/);
  expect(lines[0]).toBe("code,credits,max_uses,uses,expires_at,disabled_at,batch_id,created_at");
  expect(lines).toHaveLength(4);
  expect(lines.slice(1).map((line) => line.split(",")[0]).sort()).toEqual([...codes].sort());
  for (const line of lines.slice(1)) expect(line.split(",").slice(1, 4)).toEqual(["75", "1", "0"]);

  // A customer redeems the first code.
  const target = await customer(browser);
  const before = (await serverCredits(target.page)).credits;
  await target.page.goto("/redeem/");
  await target.page.getByLabel("Code", { exact: true }).fill(codes[0].toLowerCase());
  await target.page.getByRole("button", { name: "Redeem" }).click();
  await expect(target.page.getByText(/^75 credits added\. Your balance is now/)).toBeVisible();
  await expect.poll(async () => (await serverCredits(target.page)).credits).toBe(before + 75);

  // The batch shows the use; an admin disables another code, then the whole batch.
  await page.reload();
  await loaded(page);
  await expect(page.getByTestId("batch-uses")).toHaveText("1");
  await expect(page.locator(`tr[data-code="${codes[0]}"]`)).toContainText("1");
  await page.getByRole("button", { name: `Disable ${codes[1]}` }).click();
  await giveReason(page, "Leaked on a forum", `Disable ${codes[1]}`);
  await expect(page.getByTestId("console-notice")).toHaveText(`${codes[1]} is disabled.`);
  await expect(page.locator(`tr[data-code="${codes[1]}"]`)).toContainText("Disabled");
  await expect(page.locator(`tr[data-code="${codes[2]}"]`)).toContainText("Active");
  await docShot(page, "batch");
  await page.getByRole("button", { name: "Disable batch" }).click();
  await giveReason(page, "Campaign over", "Disable batch");
  await expect(page.getByTestId("batch-state")).toHaveText("Disabled");
  await expect(page.getByRole("button", { name: /^Disable/ })).toHaveCount(0);

  // A disabled code is refused.
  await target.page.getByLabel("Code", { exact: true }).fill(codes[2]);
  await target.page.getByRole("button", { name: "Redeem" }).click();
  await expect(target.page.getByRole("main").getByRole("alert")).toHaveText("This code is no longer valid.");
  await target.close();
});

test("a support operator reads payments and codes but sees no refund, create or disable controls", async ({ page, browser }) => {
  const target = await customer(browser);
  const { paymentId } = await buyWithStripe(target.page);
  const phone = await operator(page, "admin");
  const made = await batchByApi(page);
  grantRole(phone, "support");

  await page.goto(`/admin/payment/?id=${paymentId}`);
  await loaded(page);
  await expect(page.getByTestId("console-role")).toContainText("(support)");
  await expect(page.getByTestId("payment-status")).toHaveText("Paid");
  await expect(page.getByRole("button", { name: "Refund" })).toHaveCount(0);
  await expect(page.getByLabel(/Amount to refund/)).toHaveCount(0);
  await expect(page.getByText("Only admins can do this.")).toBeVisible();
  // Nor would the server take it.
  const refused = await apiCall(page, "POST", `/api/admin/payments/${paymentId}/refund`, { reason: "trying" });
  expect(refused.status).toBe(403);

  await page.goto("/admin/codes/");
  await loaded(page);
  await expect(page.locator(`tr[data-batch-id="${made.batch.id}"]`)).toBeVisible();
  await expect(page.getByRole("button", { name: "Create a batch" })).toHaveCount(0);
  await expect(page.getByText("Only admins can do this.")).toBeVisible();

  await page.goto(`/admin/codes/batch/?id=${made.batch.id}`);
  await loaded(page);
  await expect(page.getByTestId("batch-codes").locator("tbody tr")).toHaveCount(2);
  await expect(page.getByRole("button", { name: "Export CSV" })).toBeVisible();
  await expect(page.getByRole("button", { name: /^Disable/ })).toHaveCount(0);
  await target.close();
});

test("the payments and codes pages are accessible, on a desktop and on a phone, in English and in Chinese", async ({ page, browser }) => {
  const target = await customer(browser);
  const { paymentId } = await buyWithStripe(target.page);
  await operator(page, "admin");
  const made = await batchByApi(page);
  // A refund, so the payment page shows its refunds table.
  expect((await apiCall(page, "POST", `/api/admin/payments/${paymentId}/refund`, { amount_minor: 100, reason: "e2e: a refund to show" })).status).toBe(200);
  const pages: [string, string][] = [
    ["payments", "/admin/payments/"],
    ["payment", `/admin/payment/?id=${paymentId}`],
    ["codes", "/admin/codes/"],
    ["batch", `/admin/codes/batch/?id=${made.batch.id}`],
  ];
  for (const [width, height] of [
    [1280, 800],
    [375, 740],
  ]) {
    await page.setViewportSize({ width, height });
    for (const [name, path] of pages) {
      await page.goto(path);
      await loaded(page);
      await expect(page.getByRole("navigation", { name: "Console navigation" })).toBeVisible();
      await expectAccessible(page, `${name} at ${width} px`);
      if (width < 400) await expectNoHorizontalScroll(page);
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByLabel("Language").selectOption("zh");
  for (const [name, path] of pages) {
    await page.goto(path);
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await loaded(page);
    await expect(page.getByRole("navigation", { name: "后台导航" })).toBeVisible();
    await expectAccessible(page, `${name} (zh)`);
  }
  // The server's refusals in the page's language.
  await page.goto("/admin/payment/?id=00000000-0000-4000-8000-000000000000");
  await expect(page.getByRole("main").getByText("订单不存在。")).toBeVisible();
  await page.goto("/admin/codes/batch/?id=00000000-0000-4000-8000-000000000000");
  await expect(page.getByRole("main").getByText("批次不存在。")).toBeVisible();
  // Chinese at phone width too.
  await page.setViewportSize({ width: 375, height: 740 });
  for (const [name, path] of pages) {
    await page.goto(path);
    await loaded(page);
    await expectAccessible(page, `${name} (zh) at 375 px`);
    await expectNoHorizontalScroll(page);
  }
  await target.close();
});

// Buying credit packs in the browser, against vidgate's emulated WeChat Pay and Stripe.
import { accessToken, apiGet, expect, signInBySms, snap, test } from "./fixtures";
import {
  apiGetWithToken,
  emulatorControl,
  escapeRegExp,
  expectNoHorizontalScroll,
  money,
  pack,
  serverCredits,
} from "./account-helpers";

test("buying a pack with WeChat Pay: QR code, pay on the emulated pay page, credits arrive", async ({ page }) => {
  await signInBySms(page);
  const before = await serverCredits(page);
  const starter = await pack(page.request, 500);
  expect(starter.providers).toContain("wechat");
  const price = money(starter.prices.CNY, "CNY");

  await page.goto("/buy/");
  await expect(page.getByRole("heading", { level: 1, name: "Buy credits" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Recent payments" })).toBeVisible();
  await expect(page.getByText("You have not bought credits yet.")).toBeVisible();
  await page.getByRole("radio", { name: /^500 credits/ }).check();
  await page.getByRole("radio", { name: /WeChat Pay/ }).check();
  await snap(page, "buy");

  await page.getByRole("button", { name: `Pay ${price} with WeChat Pay` }).click();
  await expect(page).toHaveURL(/\/buy\/\?payment=[0-9a-f-]{36}$/);
  const paymentId = new URL(page.url()).searchParams.get("payment") as string;

  // What the user sees: the QR code, the amount, the time left, the status.
  const qr = page.getByRole("img", { name: `WeChat Pay QR code for ${price}` });
  await expect(qr).toBeVisible();
  expect(await qr.getAttribute("src")).toMatch(/^data:image\/png;base64,/);
  await expect(page.getByText(/^Pay within \d+:\d\d$/)).toBeVisible();
  await expect(page.getByTestId("payment-status")).toHaveText(/Waiting for your payment/);
  await expect(page.getByRole("heading", { name: `Order: 500 credits for ${price}` })).toBeVisible();
  // What the server holds: a pending order for exactly this pack.
  const pending = await apiGet(page, `/api/payments/${paymentId}`);
  expect(pending).toMatchObject({ status: "pending", provider: "wechat", credits: 500, amount: starter.prices.CNY, currency: "CNY" });
  expect(pending.code_url).toBeTruthy();
  await snap(page, "buy-wechat-qr");

  // The "WeChat app": the emulator's pay page, opened from the development link in a new tab.
  const [payPage] = await Promise.all([
    page.context().waitForEvent("page"),
    page.getByRole("link", { name: "Open the emulated WeChat pay page" }).click(),
  ]);
  await expect(payPage.getByRole("heading", { name: "WeChat Pay" })).toBeVisible();
  await expect(payPage.getByText("¥50.00", { exact: true })).toBeVisible();
  await payPage.getByRole("button", { name: "Pay ¥50.00" }).click();
  await expect(payPage.getByText(/^Paid at /)).toBeVisible();
  await payPage.close();

  // Back on vidgate: the page noticed by itself.
  await expect(page.getByTestId("payment-status")).toHaveText("Payment received: 500 credits have been added to your balance.");
  await expect(page.getByRole("region", { name: /^Order: 500 credits/ }).getByText("Paid", { exact: true })).toBeVisible();
  await expect(qr).toHaveCount(0);
  await expect.poll(() => serverCredits(page)).toBe(before + 500);
  await expect(page.getByTestId("header-balance")).toHaveText(`${before + 500} credits`);
  const paid = await apiGet(page, `/api/payments/${paymentId}`);
  expect(paid.status).toBe("completed");
  expect(paid.paid_at).toBeTruthy();
  const recent = page.getByRole("row").filter({ has: page.getByText(price, { exact: true }) });
  await expect(recent).toHaveCount(1);
  await expect(recent).toContainText("Paid");
  await snap(page, "buy-completed");

  // The ledger has the purchase, linked back to the order.
  await page.getByRole("link", { name: "See your credits" }).click();
  const purchase = page.getByRole("row").filter({ hasText: "Credits bought" });
  await expect(purchase).toContainText("+500");
  await expect(purchase).toContainText(String(before + 500));
  await expect(purchase.getByRole("link", { name: "View payment" })).toHaveAttribute("href", `/buy/?payment=${paymentId}`);
});

test("buying a pack with Stripe: checkout page, pay, back on vidgate with the credits", async ({ page }) => {
  await signInBySms(page);
  const before = await serverCredits(page);
  const standard = await pack(page.request, 1100);
  expect(standard.providers).toContain("stripe");
  const price = money(standard.prices.CNY, "CNY");

  await page.goto("/buy/");
  const token = await accessToken(page); // the checkout page is on another origin
  await page.getByRole("radio", { name: /^1,100 credits/ }).check();
  await page.getByRole("radio", { name: /Card \(Stripe\)/ }).check();
  await page.getByRole("button", { name: `Continue to Stripe to pay ${price}` }).click();

  // Stripe Checkout (emulated): the amount, and the order waiting on the server.
  await expect(page).toHaveURL(/\/_emulator\/stripe\/c\/pay\/cs_/);
  await expect(page.getByRole("heading", { name: "vidgate 1,100 credits" })).toBeVisible();
  await expect(page.getByText(`${price} CNY`)).toBeVisible();
  const orders = await apiGetWithToken(page.request, token, "/api/payments");
  expect(orders.payments[0]).toMatchObject({ status: "pending", provider: "stripe", credits: 1100, amount: standard.prices.CNY });
  const paymentId = orders.payments[0].payment_id;
  await snap(page, "stripe-checkout");
  await page.getByRole("button", { name: `Pay ${price}`, exact: true }).click();

  // Back on vidgate, following that very order until Stripe's webhook lands.
  await expect(page).toHaveURL(`/buy/?payment=${paymentId}`);
  await expect(page.getByTestId("payment-status")).toHaveText("Payment received: 1,100 credits have been added to your balance.");
  await expect.poll(() => serverCredits(page)).toBe(before + 1100);
  await expect(page.getByTestId("header-balance")).toHaveText(`${before + 1100} credits`);
  expect((await apiGet(page, `/api/payments/${paymentId}`)).status).toBe("completed");
});

test("failed payments are shown as failed and add nothing", async ({ page }) => {
  await signInBySms(page);
  const before = await serverCredits(page);
  const starter = await pack(page.request, 500);
  const price = money(starter.prices.CNY, "CNY");

  // 1. WeChat Pay refuses the order (an emulated system error): the server's reason is shown.
  await emulatorControl(page.request, "/_emulator/wechatpay/_control/faults", { next_request: "system_error" });
  await page.goto("/buy/");
  await page.getByRole("radio", { name: /^500 credits/ }).check();
  await page.getByRole("radio", { name: /WeChat Pay/ }).check();
  await page.getByRole("button", { name: `Pay ${price} with WeChat Pay` }).click();
  await expect(page.getByRole("alert").filter({ hasText: /\S/ })).toHaveText("WeChat Pay did not accept the order; try again later");
  await expect(page).toHaveURL(/\/buy\/$/);
  const refused = page.getByRole("row").filter({ hasText: "WeChat Pay" });
  await expect(refused).toContainText("Failed");
  expect((await apiGet(page, "/api/payments")).payments[0]).toMatchObject({ provider: "wechat", status: "failed" });

  // 2. A bank debit on Stripe that settles as failed, while the page is following it.
  await page.getByRole("radio", { name: /Card \(Stripe\)/ }).check();
  await page.getByRole("button", { name: `Continue to Stripe to pay ${price}` }).click();
  await expect(page).toHaveURL(/\/_emulator\/stripe\/c\/pay\/cs_/);
  const sessionId = new URL(page.url()).pathname.split("/").pop() as string;
  await page.getByRole("button", { name: `Pay ${price} by bank debit` }).click();
  await expect(page).toHaveURL(/\/buy\/\?payment=/);
  const paymentId = new URL(page.url()).searchParams.get("payment") as string;
  await expect(page.getByTestId("payment-status")).toHaveText(/Waiting for Stripe to confirm your payment/);
  await emulatorControl(page.request, `/_emulator/stripe/_control/sessions/${sessionId}/settle`, { outcome: "failed" });
  await expect(page.getByTestId("payment-status")).toHaveText(
    "The payment failed. No money was taken for this order and no credits were added.",
  );
  expect((await apiGet(page, `/api/payments/${paymentId}`)).status).toBe("failed");
  expect(await serverCredits(page)).toBe(before);
  await expect(page.getByTestId("header-balance")).toHaveText(`${before} credits`);
  await snap(page, "buy-failed");

  // Starting again brings back the packs.
  await page.getByRole("button", { name: "Start again" }).click();
  await expect(page).toHaveURL(/\/buy\/$/);
  await expect(page.getByRole("group", { name: "Choose a pack" })).toBeVisible();

  // And the page fits a phone.
  await page.setViewportSize({ width: 375, height: 800 });
  await expect(page.getByRole("button", { name: new RegExp(`^Continue to Stripe to pay ${escapeRegExp(price)}$`) })).toBeVisible();
  await expectNoHorizontalScroll(page);
  await snap(page, "buy-mobile");
});

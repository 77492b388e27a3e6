// Signing in and out: SMS with its resend countdown and the server's refusals, Google through the
// emulated consent page, the end of a session, and the Chinese interface.
import { accessToken, apiGet, expect, latestSmsCode, signInBySms, snap, test, uniquePhone, webConfig } from "./fixtures";

test("sign in by SMS: the code is sent, the resend button counts down, the dashboard opens", async ({ page }) => {
  const phone = uniquePhone();
  await page.goto("/login/");
  await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
  // Development: the hint links to the outbox for the number typed.
  await page.getByLabel("Phone number").fill(phone);
  await expect(page.getByRole("link", { name: /sms outbox/i })).toHaveAttribute(
    "href",
    `/api/_dev/sms/outbox?phone_number=${encodeURIComponent(phone)}`,
  );
  await snap(page, "login");
  await page.getByRole("button", { name: "Send code" }).click();

  const resend = page.getByRole("button", { name: /resend code/i });
  await expect(resend).toBeDisabled();
  await expect(resend).toHaveText(/Resend code \((59|60) s\)/);
  const countdown = page.getByRole("timer");
  await expect(countdown).toHaveText(/new code in (5\d|60) seconds/);
  const first = Number((await resend.textContent())?.match(/\d+/)?.[0]);
  await expect.poll(async () => Number((await resend.textContent())?.match(/\d+/)?.[0])).toBeLessThan(first);
  await expect(page.getByLabel("Verification code")).toBeFocused();
  await snap(page, "login-code-sent");

  const code = await latestSmsCode(page.request, phone);
  await page.getByLabel("Verification code").fill(code);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  await expect(page).toHaveURL(/\/$/);
  const me = await apiGet(page, "/api/auth/me");
  expect(me.phone_number).toBe("+" + phone.replace("-", ""));

  // Signed in already: the sign-in page sends you on.
  await page.goto("/login/");
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
});

test("a wrong code and a too-early resend show the server's detail", async ({ page }) => {
  const phone = uniquePhone();
  await page.goto("/login/");
  await page.getByLabel("Phone number").fill(phone);
  await page.getByRole("button", { name: "Send code" }).click();
  const code = await latestSmsCode(page.request, phone);
  const wrong = code === "123456" ? "654321" : "123456";
  await page.getByLabel("Verification code").fill(wrong);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText("Invalid or expired verification code");
  await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
  expect(await page.evaluate(() => localStorage.getItem("access_token"))).toBeNull();

  // Not a number the server accepts: its 422 detail is shown.
  await page.getByRole("button", { name: "Use another number" }).click();
  await expect(page.getByLabel("Phone number")).toBeFocused();
  await page.getByLabel("Phone number").fill("12345");
  await page.getByRole("button", { name: "Send code" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toContainText("Invalid phone number");

  // The same number again within 60 s (a fresh page has no countdown): the 429 is shown.
  await page.getByLabel("Phone number").fill(phone);
  await page.getByRole("button", { name: "Send code" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText(/Please wait \d+ seconds before requesting another code/);
});

test("sign in with Google through the emulator and come back to the page asked for", async ({ page }) => {
  const email = `g${Date.now()}@example.com`;
  await page.goto("/history/");
  await expect(page).toHaveURL(/\/login\/\?next=%2Fhistory%2F/);
  await page.getByRole("button", { name: "Sign in with Google" }).click();

  await expect(page).toHaveURL(/\/_emulator\/google\/o\/oauth2\/v2\/auth/);
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Name").fill("Grace Tester");
  // Hold the token exchange long enough to see (and keep a picture of) the callback page.
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route("**/api/auth/google/login", async (route) => {
    await held;
    await route.continue();
  });
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page).toHaveURL(/\/auth\/google\/\?.*code=.*state=/);
  const callbackUrl = page.url();
  await expect(page.getByRole("status")).toHaveText("Finishing your Google sign-in…");
  await snap(page, "google-callback");
  release();

  await expect(page.getByRole("heading", { level: 1, name: "History" })).toBeVisible();
  await expect(page).toHaveURL(/\/history\/$/);
  const me = await apiGet(page, "/api/auth/me");
  expect(me.email).toBe(email);
  expect(me.credits).toBeGreaterThan(0);

  // The state was used up: opening the callback URL again is refused with the server's detail.
  await page.unroute("**/api/auth/google/login");
  await page.goto(callbackUrl);
  await expect(page.getByRole("main").getByRole("alert")).toContainText("already used state");
  await expect(page.getByRole("link", { name: "Back to sign-in" })).toBeVisible();
});

test("the Google callback without a code explains itself", async ({ page }) => {
  await page.goto("/auth/google/?error=access_denied");
  await expect(page.getByRole("main").getByRole("alert")).toHaveText("Google sign-in was cancelled (access_denied).");
  await page.getByRole("link", { name: "Back to sign-in" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
});

test("signing out returns to the sign-in page and the old token stops working", async ({ page }) => {
  await signInBySms(page);
  const token = await accessToken(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
  await expect(page).toHaveURL(/\/login\//);
  expect(await page.evaluate(() => localStorage.getItem("access_token"))).toBeNull();

  const { api_key } = await webConfig(page.request);
  const response = await page.request.get("/api/auth/me", {
    headers: { "X-API-Key": api_key, Authorization: `Bearer ${token}` },
  });
  expect(response.status()).toBe(401);
});

test("the language switch turns the sign-in page Chinese", async ({ page }) => {
  await page.goto("/login/");
  await page.getByLabel("Language").selectOption("zh");
  await expect(page.getByRole("heading", { level: 1, name: "登录" })).toBeVisible();
  await expect(page.getByLabel("手机号")).toBeVisible();
  await expect(page.getByRole("button", { name: "发送验证码" })).toBeVisible();
  await expect(page.getByRole("button", { name: "使用 Google 登录" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  await snap(page, "login-zh");
  // The choice is remembered.
  await page.reload();
  await expect(page.getByRole("heading", { level: 1, name: "登录" })).toBeVisible();
});

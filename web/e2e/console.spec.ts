// The operator console (/admin/...): an admin finds a user, adjusts their credits, force-cancels
// their running task, switches a channel off and on, reads the audit log and the overview's charts
// (and downloads the CSV); a support operator reads but cannot do admin things; a plain user is
// told the console is for operators only; every console page passes axe-core on a desktop and a
// phone, in English and in Chinese; and, on a server with the second factor on, an operator enrols
// an authenticator app and passes the factor again with a recovery code.
import AxeBuilder from "@axe-core/playwright";
import type { Browser, Page } from "@playwright/test";

import { apiCall, expectNoHorizontalScroll } from "./account-helpers";
import { docShot, grantRole, startServer, totp } from "./console-helpers";
import { apiGet, expect, latestSmsCode, signInBySms, test, uniquePhone } from "./fixtures";
import { createByApi, serverCredits, serverTask } from "./task-helpers";

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

/** Sign in a new account in a page of its own and make it an operator; the console link shows. */
async function operator(page: Page, role: "admin" | "support" = "admin"): Promise<string> {
  const phone = await signInBySms(page);
  grantRole(phone, role);
  await page.reload();
  await expect(page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: "Console" })).toBeVisible();
  return phone;
}

/** A plain user in a browser context of their own (the customer the operator looks after). */
async function customer(browser: Browser): Promise<{ page: Page; phone: string; id: string; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const phone = await signInBySms(page, uniquePhone());
  const me = await apiGet(page, "/api/auth/me");
  return { page, phone, id: me.id, close: () => context.close() };
}

/** Wait until a console page has loaded what it shows (no "Loading…" left). */
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

test("a plain user is told the console is for operators only, and sees no console link", async ({ page }) => {
  await signInBySms(page);
  await expect(page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Console" })).toHaveCount(0);
  for (const path of ["/admin/", "/admin/users/", "/admin/channels/"]) {
    await page.goto(path);
    await expect(page.getByRole("heading", { level: 1, name: "Operators only" })).toBeVisible();
    await expect(page.getByTestId("console-denied")).toContainText("The console is for vidgate's operators");
    await expect(page.getByRole("navigation", { name: "Console navigation" })).toHaveCount(0);
  }
  await expectAccessible(page, "operators only");
  await page.getByLabel("Language").selectOption("zh");
  await expect(page.getByRole("heading", { level: 1, name: "仅限运营人员" })).toBeVisible();
});

test("an admin finds a user, adjusts credits, force-cancels a running task, switches a channel, and reads the audit log and the overview", async ({
  page,
  browser,
}) => {
  const target = await customer(browser);
  // A task that runs at the provider and never finishes on its own.
  const taskId = await createByApi(target.page, "A sunrise that takes forever [fault-stuck]");
  await expect.poll(async () => (await serverTask(target.page, taskId)).status, { timeout: 30_000 }).toBe("RUNNING");
  const before = (await serverCredits(target.page)).credits;

  await operator(page, "admin");
  await page.getByRole("navigation", { name: "Main navigation" }).getByRole("link", { name: "Console" }).click();
  await expect(page).toHaveURL(/\/admin\/$/);
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await expect(page.getByTestId("console-role")).toContainText("(admin)");

  // Find the customer by the digits of their phone number.
  await page.getByRole("navigation", { name: "Console navigation" }).getByRole("link", { name: "Users" }).click();
  await loaded(page);
  await page.getByLabel("Phone, email, username or id").fill(target.phone.replace(/\D/g, "").slice(-8));
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByTestId("users-total")).toHaveText("1 found");
  await docShot(page, "users");
  await page.locator(`tr[data-user-id="${target.id}"]`).getByRole("link").click();
  await expect(page).toHaveURL(new RegExp(`/admin/user/\\?id=${target.id}$`));
  await loaded(page);
  await expect(page.getByTestId("user-id")).toHaveText(target.id);
  await expect(page.getByTestId("admin-balance")).toHaveText(String(before));

  // Adjust credits: a reason is required.
  await page.getByLabel("Amount").fill("50");
  await page.getByRole("button", { name: "Adjust" }).click();
  await expect(page.getByText("Give a reason of at least 3 characters.")).toBeVisible();
  await page.getByRole("textbox", { name: "Reason" }).fill("Goodwill for a slow render");
  await page.getByRole("button", { name: "Adjust" }).click();
  await expect(page.getByTestId("console-notice")).toHaveText(
    `Done: the balance is now ${before + 50} credits.`,
  );
  await expect(page.getByTestId("admin-balance")).toHaveText(String(before + 50));
  await expect(page.getByTestId("user-ledger")).toContainText("Goodwill for a slow render");
  expect((await serverCredits(target.page)).credits).toBe(before + 50);
  await docShot(page, "user");

  // The customer's running task: force-cancel with a reason; every credit goes back.
  await page.getByRole("link", { name: "All of this user's tasks" }).click();
  await expect(page).toHaveURL(new RegExp(`/admin/tasks/\\?user_id=${target.id}$`));
  await loaded(page);
  await expect(page.getByTestId("tasks-total")).toHaveText("1 found");
  const row = page.locator(`tr[data-task-id="${taskId}"]`);
  await expect(row.locator(".badge")).toHaveText("Running");
  await docShot(page, "tasks");
  await row.getByRole("link", { name: taskId.slice(0, 8) + "…" }).click();
  await expect(page).toHaveURL(new RegExp(`/admin/task/\\?id=${taskId}$`));
  await loaded(page);
  await expect(page.locator("main .badge").first()).toHaveText("Running");
  await expect(page.getByTestId("admin-task-attempts")).toBeVisible();
  await page.getByRole("button", { name: "Force-cancel" }).click();
  await giveReason(page, "Stuck at the provider", "Force-cancel");
  await expect(page.getByText("The task was canceled and its credits returned.")).toBeVisible();
  await expect(page.locator("main .badge").first()).toHaveText("Canceled");
  await expect(page.getByRole("button", { name: "Force-cancel" })).toHaveCount(0);
  const canceled = await serverTask(target.page, taskId);
  expect(canceled.status).toBe("CANCELED");
  expect(canceled.credits_refunded).toBe(canceled.credits_charged);
  await expect(page.getByTestId("admin-task-refunded")).toHaveText(String(canceled.credits_refunded));
  await docShot(page, "task");

  // A channel off and on again, each with a reason.
  await page.getByRole("navigation", { name: "Console navigation" }).getByRole("link", { name: "Channels" }).click();
  await loaded(page);
  const first = page.locator("table[data-testid=channels] tbody tr").first();
  const channel = (await first.getAttribute("data-channel")) as string;
  const model = (await first.getAttribute("data-model")) as string;
  await expect(first.getByTestId("channel-state")).toContainText("Enabled");
  try {
    await first.getByRole("button", { name: `Disable ${channel} for ${model}` }).click();
    await giveReason(page, "Vendor incident", "Disable");
    await expect(page.getByTestId("console-notice")).toHaveText(`${channel} is now disabled: no new task goes to it.`);
    await expect(first.getByTestId("channel-state")).toContainText("Disabled");
    await docShot(page, "channels");
    await first.getByRole("button", { name: `Enable ${channel} for ${model}` }).click();
    await giveReason(page, "Vendor recovered", "Enable");
    await expect(page.getByTestId("console-notice")).toHaveText(`${channel} is now enabled.`);
    await expect(first.getByTestId("channel-state")).toContainText("Enabled");
  } catch (failure) {
    // Leave no channel off for the specs that follow.
    await apiCall(page, "POST", `/api/admin/channels/${channel}/enable`, { reason: "e2e: clean up" });
    throw failure;
  }

  // Every action above is in the audit log, with its reason.
  await page.getByRole("navigation", { name: "Console navigation" }).getByRole("link", { name: "Audit log" }).click();
  await loaded(page);
  const audit = page.locator("table[data-testid=audit]");
  await expect(audit.locator('tr[data-action="channel.enabled"]').first()).toContainText("Vendor recovered");
  await expect(audit.locator('tr[data-action="channel.disabled"]').first()).toContainText("Vendor incident");
  await expect(audit.locator('tr[data-action="task.canceled"]').first()).toContainText("Stuck at the provider");
  await expect(audit.locator('tr[data-action^="credits."]').first()).toContainText("Goodwill for a slow render");
  // Filtered to what concerns the customer.
  await page.getByLabel("Target id").fill(target.id);
  await page.getByRole("button", { name: "Filter", exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`target_id=${target.id}`));
  await expect(audit.locator("tbody tr").first()).toBeVisible();
  // The filtered list replaces the whole one once it has loaded: wait for it, not for any row.
  await expect
    .poll(async () =>
      (await audit.locator("tbody tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-action")))).every((action) =>
        /^credits\./.test(action ?? ""),
      ),
    )
    .toBe(true);
  await page.getByRole("button", { name: "Clear filters" }).click();
  await expect(audit.locator('tr[data-action="channel.enabled"]').first()).toBeVisible();
  await docShot(page, "audit");

  // The overview: charts drawn from today's figures, and the CSV.
  await page.getByRole("navigation", { name: "Console navigation" }).getByRole("link", { name: "Overview" }).click();
  await loaded(page);
  expect(Number(await page.getByTestId("total-signups").textContent())).toBeGreaterThanOrEqual(2);
  expect(Number(await page.getByTestId("total-tasks").textContent())).toBeGreaterThanOrEqual(1);
  for (const chart of ["chart-users", "chart-rates"]) {
    // A line over the 30 days (a flat line of zeros has no height, so "drawn" rather than "visible").
    await expect(page.getByTestId(chart).locator("svg path.recharts-curve").first()).toHaveAttribute("d", /^M[\d.]+,[\d.]+[CL]/);
  }
  for (const chart of ["chart-status", "chart-credits"]) {
    await expect(page.getByTestId(chart).locator("svg path.recharts-rectangle").first()).toBeAttached();
  }
  await expect(page.getByTestId("chart-duration").locator(".recharts-wrapper > svg.recharts-surface")).toBeVisible();
  const today = new Date().toISOString().slice(0, 10);
  await docShot(page, "overview");
  await page.getByTestId("chart-status").getByText("The numbers: Tasks by status").click();
  await expect(page.getByTestId("chart-status").locator("tbody tr").last()).toContainText(today);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
  expect(download.suggestedFilename()).toMatch(/^vidgate-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
  const stream = await download.createReadStream();
  let csv = "";
  for await (const chunk of stream) csv += chunk.toString();
  const lines = csv.trim().split(/\r?\n/);
  expect(lines[0]).toMatch(/^day,signups,active_users/);
  expect(lines).toHaveLength(31);
  expect(lines.at(-1)).toContain(today);

  // A shorter range.
  const weekAgo = new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10);
  await page.getByLabel("From").fill(weekAgo);
  await page.getByRole("button", { name: "Show" }).click();
  await expect(page.getByTestId("overview-range")).toHaveText(`${weekAgo} to ${today} (UTC days)`);

  await target.close();
});

test("a support operator reads everything, adjusts credits, and is told what only admins do", async ({ page, browser }) => {
  const target = await customer(browser);
  await operator(page, "support");
  await page.goto(`/admin/user/?id=${target.id}`);
  await loaded(page);
  await expect(page.getByTestId("console-role")).toContainText("(support)");
  await expect(page.getByRole("button", { name: "Suspend" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Delete account" })).toHaveCount(0);
  await expect(page.getByText("Only admins can do this.")).toBeVisible();
  const before = (await serverCredits(target.page)).credits;
  // More than VIDGATE_SUPPORT_ADJUST_LIMIT (500) needs an admin.
  await page.getByLabel("Amount").fill("501");
  await page.getByRole("textbox", { name: "Reason" }).fill("Big goodwill");
  await page.getByRole("button", { name: "Adjust" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText("An adjustment this large needs an admin.");
  await expect(page.getByTestId("admin-balance")).toHaveText(String(before));
  await page.getByLabel("Amount").fill("-5");
  await page.getByRole("textbox", { name: "Reason" }).fill("Duplicate promo");
  await page.getByRole("button", { name: "Adjust" }).click();
  await expect(page.getByTestId("admin-balance")).toHaveText(String(before - 5));
  await page.goto("/admin/channels/");
  await loaded(page);
  await expect(page.locator("table[data-testid=channels] tbody tr").first()).toBeVisible();
  await expect(page.getByRole("button", { name: /^(Disable|Enable) / })).toHaveCount(0);
  await target.close();
});

test("an admin suspends, restores, signs out and deletes an account, each confirmed with a reason", async ({ page, browser }) => {
  const target = await customer(browser);
  await operator(page, "admin");
  await page.goto(`/admin/user/?id=${target.id}`);
  await loaded(page);

  await page.getByRole("button", { name: "Suspend" }).click();
  await expect(page.getByRole("dialog")).toContainText("Their sessions end");
  // No reason, no action.
  await page.getByRole("dialog").getByRole("button", { name: "Suspend" }).click();
  await expect(page.getByRole("dialog").getByText("Give a reason of at least 3 characters.")).toBeVisible();
  await page.getByRole("dialog").getByLabel("Reason").fill("Chargeback fraud");
  await page.getByRole("dialog").getByRole("button", { name: "Suspend" }).click();
  await expect(page.getByTestId("user-state")).toHaveText("Suspended");
  const { api_key } = await (await target.page.request.get("/api/web/config")).json();
  const token = await target.page.evaluate(() => localStorage.getItem("access_token"));
  const refused = await target.page.request.get("/api/auth/me", { headers: { "X-API-Key": api_key, Authorization: `Bearer ${token}` } });
  expect(refused.status()).toBe(401);

  await page.getByRole("button", { name: "Restore" }).click();
  await giveReason(page, "Bank cleared it", /^Restore$/);
  await expect(page.getByTestId("user-state")).toHaveText("Active");

  await page.getByRole("combobox", { name: "Role" }).selectOption("support");
  await page.getByRole("button", { name: "Change role" }).click();
  await giveReason(page, "Joins the support desk", "Change role");
  await expect(page.getByTestId("user-role")).toHaveText("support");
  await page.getByRole("combobox", { name: "Role" }).selectOption("user");
  await page.getByRole("button", { name: "Change role" }).click();
  await giveReason(page, "Left the support desk", "Change role");
  await expect(page.getByTestId("user-role")).toHaveText("user");

  await page.getByRole("button", { name: "Sign out everywhere" }).click();
  await giveReason(page, "Lost phone", "Sign out everywhere");
  await expect(page.getByText(/sessions ended\.$/)).toBeVisible();

  await page.getByRole("button", { name: "Delete account" }).click();
  await giveReason(page, "Asked to be forgotten", "Delete account");
  await expect(page.getByTestId("user-state")).toHaveText("Deleted");
  await expect(page.getByRole("button", { name: "Delete account" })).toBeDisabled();

  // Not on one's own account: the dialog says why and stays open.
  const me = await apiGet(page, "/api/auth/me");
  await page.goto(`/admin/user/?id=${me.id}`);
  await loaded(page);
  await page.getByRole("button", { name: "Suspend" }).click();
  await page.getByRole("dialog").getByLabel("Reason").fill("Testing myself");
  await page.getByRole("dialog").getByRole("button", { name: "Suspend" }).click();
  await expect(page.getByRole("dialog").getByRole("alert")).toHaveText(
    "Operators cannot change their own role or account state; another admin must.",
  );
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByTestId("user-state")).toHaveText("Active");
  await target.close();
});

test("every console page is accessible, on a desktop and on a phone, in English and in Chinese", async ({ page }) => {
  const phone = await operator(page, "admin");
  const taskId = await createByApi(page, "a lighthouse at dusk, waves below");
  await expect.poll(async () => (await serverTask(page, taskId)).status, { timeout: 30_000 }).toBe("SUCCEEDED");
  const me = await apiGet(page, "/api/auth/me");
  const pages: [string, string][] = [
    ["overview", "/admin/"],
    ["users", `/admin/users/?q=${phone.replace(/\D/g, "").slice(-8)}`],
    ["user", `/admin/user/?id=${me.id}`],
    ["tasks", "/admin/tasks/"],
    ["task", `/admin/task/?id=${taskId}`],
    ["channels", "/admin/channels/"],
    ["audit", "/admin/audit/"],
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
  // The task page plays the result.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`/admin/task/?id=${taskId}`);
  await loaded(page);
  const video = page.getByLabel("The task's video");
  await expect(video).toBeVisible();
  await expect.poll(() => video.evaluate((element) => (element as HTMLVideoElement).readyState)).toBeGreaterThanOrEqual(1);

  // A finished task today: the time-to-video chart has its bar.
  await page.goto("/admin/");
  await loaded(page);
  await expect(page.getByTestId("chart-duration").locator("svg path.recharts-rectangle").first()).toBeAttached();

  await page.getByLabel("Language").selectOption("zh");
  for (const [name, path] of pages) {
    await page.goto(path);
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await loaded(page);
    await expect(page.getByRole("navigation", { name: "后台导航" })).toBeVisible();
    await expectAccessible(page, `${name} (zh)`);
  }
});

test("with the second factor on, an operator enrols an authenticator, keeps the recovery codes, and verifies in a new session", async ({
  browser,
}) => {
  test.setTimeout(240_000);
  // A server of its own: the shared one runs in development mode, where the factor is off.
  const port = Number(process.env.VIDGATE_E2E_PORT ?? 8765) + 1;
  const server = await startServer(port, { VIDGATE_CONSOLE_SECOND_FACTOR: "true", VIDGATE_SMS_RESEND_INTERVAL_SECONDS: "0" });
  try {
    const first = await browser.newContext({ baseURL: server.url, locale: "en-US" });
    const page = await first.newPage();
    const phone = await signInBySms(page, uniquePhone());
    grantRole(phone, "admin", port);
    await page.goto("/admin/users/");
    await expect(page.getByRole("heading", { level: 1, name: "Second factor" })).toBeVisible();
    await expect(page.getByRole("navigation", { name: "Console navigation" })).toHaveCount(0);
    await page.getByRole("button", { name: "Set up the authenticator" }).click();
    const qr = page.getByRole("img", { name: "QR code for the authenticator app" });
    await expect(qr.locator("svg path, svg rect").first()).toBeAttached();
    const secret = (await page.getByTestId("totp-secret").textContent()) as string;
    expect(secret).toMatch(/^[A-Z2-7]{16,}=*$/);
    await expectAccessible(page, "second factor enrolment");
    await docShot(page, "second-factor");
    await page.getByLabel("Code from the app").fill(totp(secret));
    await page.getByRole("button", { name: "Confirm" }).click();
    await expect(page.getByRole("heading", { name: "Your recovery codes" })).toBeFocused();
    const codes = await page.getByTestId("recovery-codes").locator("li").allTextContents();
    expect(codes).toHaveLength(10);
    await docShot(page, "recovery-codes");
    await page.getByRole("button", { name: "I have saved them — open the console" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Users" })).toBeVisible();
    await expect(page.getByRole("navigation", { name: "Console navigation" })).toBeVisible();

    // Another session (another browser): the factor is asked for again; a recovery code passes it.
    const second = await browser.newContext({ baseURL: server.url, locale: "en-US" });
    const other = await second.newPage();
    const used = await latestSmsCode(other.request, phone);
    await other.goto("/login/");
    await other.getByLabel(/phone number/i).fill(phone);
    await other.getByRole("button", { name: /send code/i }).click();
    let code = used;
    await expect.poll(async () => (code = await latestSmsCode(other.request, phone))).not.toBe(used);
    await other.getByLabel(/verification code/i).fill(code);
    await other.getByRole("button", { name: /^sign in$/i }).click();
    await expect(other.getByRole("heading", { level: 1, name: /dashboard/i })).toBeVisible();
    await other.goto("/admin/");
    await expect(other.getByText("Enter the 6-digit code from your authenticator app")).toBeVisible();
    await other.getByLabel("Code from the app").fill("000000");
    await other.getByRole("button", { name: "Verify" }).click();
    await expect(other.getByRole("main").getByRole("alert")).toHaveText("Invalid or already used code");
    await other.getByLabel("Code from the app").fill(codes[0]);
    await other.getByRole("button", { name: "Verify" }).click();
    await expect(other.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
    await first.close();
    await second.close();
  } finally {
    await server.stop();
  }
});

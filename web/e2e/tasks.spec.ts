// Making videos: uploads with progress, the four kinds from the form to a playing result, what
// each cost (on the page and on the server), cancel with refund (and a cancel the provider cannot
// honour: the task runs on, charged), failure with refund and retry, running out of credits, a
// refused upload, and tasks that are not yours.
import { apiGet, expect, signInBySms, snap, test } from "./fixtures";
import {
  cancelByApi,
  createByApi,
  createTextToVideo,
  expectStatus,
  expectVideoPlays,
  KIND_LABEL,
  openCreate,
  sample,
  serverCredits,
  serverTask,
  submitCreate,
  upload,
  type Kind,
} from "./task-helpers";

test.describe.configure({ timeout: 180_000 });

/** On the task page: watch the task run to Succeeded, check the player and the charge shown. */
async function watchToSuccess(page: import("@playwright/test").Page, id: string, kind: Kind, shot?: string) {
  await expect(page.getByRole("heading", { level: 1, name: KIND_LABEL[kind] })).toBeVisible();
  if (shot) {
    await expectStatus(page, /Queued|Running/);
    await expect(page.getByRole("progressbar", { name: "Progress" })).toBeVisible();
    await expect(page.getByRole("button", { name: "Cancel task" })).toBeEnabled();
    await snap(page, shot);
  }
  await expectStatus(page, "Succeeded");
  await expect(page.getByTestId("task-live")).toHaveText("Your video is ready.");
  await expectVideoPlays(page);
  await expect(page.getByRole("link", { name: "Download the video" })).toHaveAttribute("download", "");
  const task = await serverTask(page, id);
  expect(task.status).toBe("SUCCEEDED");
  expect(task.result_url).toBeTruthy();
  await expect(page.getByRole("link", { name: "Download the video" })).toHaveAttribute("href", task.result_url);
  // The page shows what the server charged.
  const credits = page.getByTestId("task-credits");
  await expect(credits.locator("dt:text-is('Charged') + dd")).toHaveText(String(task.credits_charged));
  await expect(credits.locator("dt:text-is('You paid') + dd")).toHaveText(`${task.credits_charged - task.credits_refunded} credits`);
  return task;
}

test("upload, make all four kinds, watch them finish and pay the right price; then run out", async ({ page }) => {
  await signInBySms(page);
  await expect(page.getByText("You have not made any videos yet.")).toBeVisible();
  await expect(page.getByTestId("stat-balance")).toContainText("100");
  const start = await serverCredits(page);
  expect(start.available).toBe(100);
  let spent = 0;

  // animate-move: two uploads with progress bars; the price follows the video's length and mode.
  await openCreate(page, "animate-move");
  await expect(page.getByTestId("price")).toContainText("10 credits per second of video");
  await upload(page, "Character image", "portrait.jpg", "Image upload");
  await expect(page.getByText("Uploaded portrait.jpg (320×400).")).toBeVisible();
  await expect(page.getByRole("img", { name: "Preview of the chosen image" })).toBeVisible();
  await upload(page, /^Reference video/, "dance.mp4", "Video upload");
  await expect(page.getByText("Uploaded dance.mp4 (2.5 s).")).toBeVisible();
  await expect(page.getByTestId("price")).toContainText("About 25 credits: 2.5 s of video at 10 credits per second.");
  await page.getByRole("radio", { name: /^Pro/ }).check();
  await expect(page.getByTestId("price")).toContainText("About 35 credits: 2.5 s of video at 14 credits per second.");
  await page.getByRole("radio", { name: /^Standard/ }).check();
  await expect(page.getByTestId("available")).toHaveText("Available: 100 credits.");
  await snap(page, "create-animate-move");
  let id = await submitCreate(page);
  // While it runs, the estimate is held, not charged.
  const held = await serverTask(page, id);
  expect(held.billing_mode).toBe("metered");
  expect(held.credits_estimated).toBe(25);
  let task = await watchToSuccess(page, id, "animate-move", "task-running");
  expect(task.credits_charged).toBe(Math.ceil(task.result_duration_seconds * 10));
  spent += task.credits_charged - task.credits_refunded;
  await snap(page, "task-succeeded");
  expect((await serverCredits(page)).available).toBe(100 - spent);

  // animate-mix (Standard: four videos must fit in the 100 free credits).
  await openCreate(page, "animate-mix");
  await upload(page, "Image of the character to put in", "portrait.jpg", "Image upload");
  await upload(page, "Video to put the character into", "dance.mp4", "Video upload");
  await expect(page.getByRole("radio", { name: /^Standard/ })).toBeChecked();
  await expect(page.getByTestId("price")).toContainText("About 25 credits");
  await expect(page.getByTestId("available")).toHaveText(`Available: ${100 - spent} credits.`);
  await snap(page, "create-animate-mix");
  id = await submitCreate(page);
  task = await watchToSuccess(page, id, "animate-mix");
  expect(task.inputs.mode).toBe("wan-std");
  expect(task.credits_charged).toBe(Math.ceil(task.result_duration_seconds * 10));
  spent += task.credits_charged - task.credits_refunded;

  // text-to-video: a fixed price taken up front.
  await openCreate(page, "text-to-video");
  await page.getByLabel("Prompt").fill("A paper boat drifting down a rainy street, cinematic");
  await expect(page.getByText("52 / 5,000 characters")).toBeVisible();
  await page.getByRole("radio", { name: /^Portrait/ }).check();
  await expect(page.getByTestId("price")).toHaveText("20 credits, taken now; refunded automatically if the video fails.");
  await snap(page, "create-text-to-video");
  id = await submitCreate(page);
  expect((await serverTask(page, id)).credits_charged).toBe(20);
  task = await watchToSuccess(page, id, "text-to-video");
  expect(task.inputs).toMatchObject({ quality: "standard", aspect_ratio: "portrait" });
  spent += 20;

  // image-to-video: an upload and a prompt, 25 credits.
  await openCreate(page, "image-to-video");
  await upload(page, "Image to animate", "portrait.jpg", "Image upload");
  await page.getByLabel("Prompt").fill("The person smiles and waves");
  await expect(page.getByTestId("price")).toContainText("25 credits, taken now");
  await snap(page, "create-image-to-video");
  id = await submitCreate(page);
  task = await watchToSuccess(page, id, "image-to-video");
  expect(task.credits_charged).toBe(25);
  spent += 25;

  // The server's balance moved by exactly what the tasks cost, and the pages say the same.
  const after = await serverCredits(page);
  expect(after.credits).toBe(100 - spent);
  expect(after.available).toBe(100 - spent);
  await page.getByRole("link", { name: "Dashboard" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("stat-balance").locator(".stat")).toHaveText(String(100 - spent));
  await expect(page.getByTestId("stat-available").locator(".stat")).toHaveText(String(100 - spent));
  await expect(page.getByTestId("header-balance")).toHaveText(`${100 - spent} credits`);
  await expect(page.locator("main li[data-task-id]")).toHaveCount(4);
  await snap(page, "dashboard");

  // History: all four, a status filter, each row a link to its task.
  await page.getByRole("link", { name: "See all tasks" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "History" })).toBeVisible();
  await expect(page.getByTestId("history-total")).toHaveText("4 tasks");
  await page.getByLabel("Status").selectOption("SUCCEEDED");
  await expect(page).toHaveURL(/status=SUCCEEDED/);
  await expect(page.getByTestId("history-total")).toHaveText("4 tasks");
  await page.getByLabel("Status").selectOption("FAILED");
  await expect(page.getByText("No tasks with this status.")).toBeVisible();
  await page.getByLabel("Status").selectOption("");
  await expect(page.locator("main li[data-task-id]")).toHaveCount(4);
  await snap(page, "history");
  await page.getByRole("link", { name: KIND_LABEL["text-to-video"] }).click();
  await expect(page.getByRole("heading", { level: 1, name: KIND_LABEL["text-to-video"] })).toBeVisible();

  // Not enough left for another video: the page warns, the server's 402 is shown, Buy leads on.
  expect(100 - spent).toBeLessThan(20);
  await openCreate(page, "text-to-video");
  await page.getByLabel("Prompt").fill("One more, please");
  await expect(page.getByText("This costs more than your available credits.")).toBeVisible();
  await page.getByRole("button", { name: "Create video" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText(
    `Insufficient credits. Required: 20 credits (standard quality). Available: ${100 - spent} credits.`,
  );
  await expect(page).toHaveURL(/\/create\//);
  await page.getByRole("main").getByRole("link", { name: "Buy credits" }).last().click();
  await expect(page).toHaveURL(/\/buy\/$/);
  expect((await serverCredits(page)).credits).toBe(100 - spent);
});

test("cancel: a task not yet at the provider stops with its credits back; one it cannot stop runs on, charged", async ({ page }) => {
  await signInBySms(page);
  // Both channels of Wan 2.7 (DashScope, then fal.ai) keep refusing the submit with 429, so nothing
  // reaches a provider: cancelable.
  const id = await createTextToVideo(page, "A sunrise that never gets a slot [fault-throttle]");
  await expectStatus(page, "Queued");
  expect((await serverCredits(page)).credits).toBe(80);

  await page.getByRole("button", { name: "Cancel task" }).click();
  // The question says what a cancel can and cannot give back, before the click.
  const question = page.locator("#cancel-question");
  await expect(question).toContainText("If the provider has not started it yet, it stops and its credits come back.");
  await expect(question).toContainText("keeps running and is charged for what it makes");
  await expect(page.getByRole("button", { name: "Keep it running" })).toBeFocused();
  await page.getByRole("button", { name: "Keep it running" }).click();
  await expect(page.getByRole("button", { name: "Cancel task" })).toBeFocused();
  expect((await serverTask(page, id)).cancel_requested).toBe(false);

  await page.getByRole("button", { name: "Cancel task" }).click();
  await page.getByRole("button", { name: "Yes, cancel it" }).click();
  await expectStatus(page, "Canceled", 30_000);
  await expect(page.getByTestId("task-refund")).toHaveText("20 credits were refunded to your balance.");
  await expect(page.getByTestId("task-credits").locator("dt:text-is('Refunded') + dd")).toHaveText("20");
  await expect(page.getByRole("button", { name: "Cancel task" })).toHaveCount(0);
  await expect(page.getByTestId("task-cancel-refused")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Retry" })).toBeVisible();
  const task = await serverTask(page, id);
  expect(task).toMatchObject({ status: "CANCELED", cancel_outcome: "canceled", credits_charged: 20, credits_refunded: 20 });
  expect((await serverCredits(page)).credits).toBe(100);
  await expect(page.getByTestId("header-balance")).toHaveText("100 credits");

  // Running at DashScope, which cancels only what it has not started: the page says the task runs
  // on, and the charge stays.
  const running = await createTextToVideo(page, "A sunrise that takes forever [fault-stuck]");
  await expectStatus(page, "Running");
  // Past the provider's queue (a progress above the submit's 5 % says the provider runs it).
  await expect.poll(async () => (await serverTask(page, running)).progress, { timeout: 30_000 }).toBeGreaterThanOrEqual(10);
  await page.getByRole("button", { name: "Cancel task" }).click();
  await page.getByRole("button", { name: "Yes, cancel it" }).click();
  await expect(page.getByTestId("task-cancel-refused")).toHaveText(
    "The provider could not stop this task: it keeps running, you get the video and it is charged for what it makes. If it fails, the credits come back.",
  );
  await snap(page, "task-cancel-refused");
  await expectStatus(page, "Running");
  await expect(page.getByRole("button", { name: "Cancel task" })).toHaveCount(0);
  expect(await serverTask(page, running)).toMatchObject({
    status: "RUNNING",
    cancel_requested: true,
    cancel_outcome: "not_cancelable",
    credits_charged: 20,
    credits_refunded: 0,
  });
  expect((await serverCredits(page)).credits).toBe(80);

  // The dashboard follows unfinished tasks live: canceled elsewhere, it shows at once.
  const other = await createByApi(page, "Another one that never gets a slot [fault-throttle]");
  await page.getByRole("link", { name: "Dashboard" }).click();
  const row = page.locator(`main li[data-task-id="${other}"]`);
  await expect(row.locator(".badge")).toHaveText(/Queued|Running/);
  await expect(row.getByRole("progressbar")).toBeVisible();
  await expect(row).toContainText("20 charged");
  await expect(page.getByTestId("stat-available").locator(".stat")).toHaveText("60");
  await cancelByApi(page, other);
  await expect(row.locator(".badge")).toHaveText("Canceled", { timeout: 30_000 });
  await expect(row).toContainText("20 refunded");
  await expect(row.getByRole("progressbar")).toHaveCount(0);
  await expect(page.getByTestId("stat-available").locator(".stat")).toHaveText("80");
});

test("a failed task shows the error and the refund, and Retry runs it again", async ({ page, browser }) => {
  await signInBySms(page);
  const id = await createTextToVideo(page, "Something the moderator refuses [fault-moderation]");
  await expectStatus(page, "Failed");
  const failed = await serverTask(page, id);
  await expect(page.getByTestId("task-error")).toContainText(failed.error_message);
  await expect(page.getByTestId("task-error")).toContainText(`Error code: ${failed.error_code}`);
  await expect(page.getByTestId("task-refund")).toHaveText("20 credits were refunded to your balance.");
  expect(failed).toMatchObject({ status: "FAILED", credits_charged: 20, credits_refunded: 20 });
  expect((await serverCredits(page)).credits).toBe(100);
  await snap(page, "task-failed");
  // The task page in Chinese, server words (the provider's error) left as they came.
  await page.getByLabel("Language").selectOption("zh");
  await expect(page.getByRole("heading", { level: 1, name: "文字生成视频" })).toBeVisible();
  await expect(page.getByTestId("task-refund")).toHaveText("已向你的余额退还 20 积分。");
  await expect(page.getByRole("button", { name: "重试" })).toBeVisible();
  await page.getByLabel("语言").selectOption("en");

  await page.getByRole("button", { name: "Retry" }).click();
  await expect(page).not.toHaveURL(new RegExp(id));
  await expect(page).toHaveURL(/\/task\/\?id=[0-9a-f-]{36}$/);
  const retryId = new URL(page.url()).searchParams.get("id") as string;
  const retried = await serverTask(page, retryId);
  expect(retried.retry_of).toBe(id);
  expect(retried.inputs.prompt).toBe(failed.inputs.prompt);
  await expect(page.getByRole("link", { name: "the earlier task" })).toHaveAttribute("href", `/task/?id=${id}`);
  await expectStatus(page, "Failed"); // the same prompt is refused again, and refunded again
  await expect(page.getByTestId("task-refund")).toHaveText("20 credits were refunded to your balance.");
  expect((await serverCredits(page)).credits).toBe(100);

  // Tasks that do not exist, or are someone else's, are "not found".
  await page.goto("/task/?id=00000000-0000-0000-0000-000000000000");
  await expect(page.getByRole("heading", { level: 1, name: "Task not found" })).toBeVisible();
  const other = await browser.newPage();
  await signInBySms(other);
  await other.goto(`/task/?id=${id}`);
  await expect(other.getByRole("heading", { level: 1, name: "Task not found" })).toBeVisible();
  await other.close();
});

test("uploads the server refuses show its reason; wrong types are caught before sending", async ({ page }) => {
  await signInBySms(page);
  await openCreate(page, "animate-move");
  const requests: string[] = [];
  page.on("request", (request) => {
    if (request.url().includes("/api/uploads/tus/") && request.method() === "PATCH") requests.push(request.url());
  });

  // Named .mp4 but not a video: the server probes it and says so.
  await page.getByLabel(/^Reference video/).setInputFiles(sample("not-a-video.mp4"));
  await expect(page.getByRole("main").getByRole("alert")).toHaveText(
    "The file is not a recognised media type; expected a video (.avi, .mov, .mp4, .webm)",
  );
  expect(requests).toHaveLength(1);
  await expect(page.getByRole("progressbar", { name: "Video upload" })).toHaveCount(0);

  // A type the form does not take never leaves the browser.
  await page.getByLabel("Character image").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hi") });
  await expect(page.getByText("notes.txt is not a supported file type. Choose .jpg, .jpeg, .png, .webp.")).toBeVisible();
  expect(requests).toHaveLength(1);

  // Creating without the files is stopped with a reason, not a dead button.
  await page.getByRole("button", { name: "Create video" }).click();
  await expect(page.getByText("Upload an image first.")).toBeVisible();
  await expect(page).toHaveURL(/\/create\//);
  const list = await apiGet(page, "/api/tasks/user/tasks");
  expect(list.total).toBe(0);
});

test("history pages through many tasks and filters them by status", async ({ page }) => {
  await signInBySms(page);
  // Eleven refused prompts (refunded each time) and one success: more than a page of ten.
  const failing: string[] = [];
  for (let i = 0; i < 11; i += 1) failing.push(await createByApi(page, `Refused number ${i + 1} [fault-moderation]`));
  const ok = await createByApi(page, "A calm lake at dawn");
  await expect
    .poll(async () => (await apiGet(page, "/api/tasks/user/tasks?status=FAILED&page_size=100")).total, { timeout: 60_000 })
    .toBe(11);

  await page.goto("/history/");
  await expect(page.getByTestId("history-total")).toHaveText("12 tasks");
  await expect(page.locator("main li[data-task-id]")).toHaveCount(10);
  const pager = page.getByRole("navigation", { name: "pagination" });
  await expect(pager).toContainText("1 / 2");
  await expect(pager.getByRole("button", { name: "Previous" })).toBeDisabled();
  await pager.getByRole("button", { name: "Next" }).click();
  await expect(page).toHaveURL(/page=2/);
  await expect(pager).toContainText("2 / 2");
  await expect(page.locator("main li[data-task-id]")).toHaveCount(2);
  // Newest first: the first task made is last.
  await expect(page.locator("main li[data-task-id]").last()).toHaveAttribute("data-task-id", failing[0]);
  await expect(pager.getByRole("button", { name: "Next" })).toBeDisabled();

  // A filter starts again at page one and counts only its tasks.
  await page.getByLabel("Status").selectOption("FAILED");
  await expect(page).toHaveURL(/\?status=FAILED$/);
  await expect(page.getByTestId("history-total")).toHaveText("11 tasks");
  await expect(page.locator(`main li[data-task-id="${ok}"]`)).toHaveCount(0);
  await expect(page.locator("main li[data-task-id] .badge").first()).toHaveText("Failed");
  await page.getByLabel("Status").selectOption("CANCELED");
  await expect(page.getByText("No tasks with this status.")).toBeVisible();
  await expect(pager).toHaveCount(0);
  // The address keeps the filter and page: Back returns to them.
  await page.goBack();
  await expect(page.getByLabel("Status")).toHaveValue("FAILED");
  await expect(page.getByTestId("history-total")).toHaveText("11 tasks");
});

test("the pages fit a 375 px wide phone", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  const fits = async () => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(375);
  };
  await page.goto("/login/");
  await expect(page.getByLabel("Phone number")).toBeVisible();
  await fits();
  await signInBySms(page);
  await fits();
  const id = await createTextToVideo(page, "A narrow screen test with a long prompt that has to wrap somewhere [fault-moderation]");
  await expectStatus(page, "Failed");
  await fits();
  await snap(page, "task-failed-375");
  await page.goto("/create/?kind=animate-move");
  await expect(page.getByRole("radio", { name: "Animate a photo" })).toBeChecked();
  await fits();
  await snap(page, "create-375");
  await page.goto("/history/");
  await expect(page.locator(`main li[data-task-id="${id}"]`)).toBeVisible();
  await fits();
});

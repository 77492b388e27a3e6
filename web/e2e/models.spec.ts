// The catalog's models on the create page: each kind lists its models (the default chosen) with
// their names and descriptions in the page's language, text and image to video offer the model's
// durations, the price follows the model, tier and duration, the prompt limit follows the model,
// a model that is not available cannot be used, and the request names the model and duration the
// task then shows. Sora is retired: no page names it.
import type { Page } from "@playwright/test";

import { accessToken, apiGet, expect, signInBySms, snap, test, webConfig } from "./fixtures";
import { expectStatus, openCreate, serverCredits, serverTask, submitCreate, upload } from "./task-helpers";

test.describe.configure({ timeout: 180_000 });

const FIXED = (n: number) => `${n} credits, taken now; refunded automatically if the video fails.`;

/** The bodies the page posts to `path` from now on. They are read while the request is routed:
 * Chromium reports no body for these fetch requests to a plain request listener. */
async function recordPosts(page: Page, path: string): Promise<unknown[]> {
  const bodies: unknown[] = [];
  await page.route(`**${path}`, async (route) => {
    if (route.request().method() === "POST") bodies.push(route.request().postDataJSON());
    await route.continue();
  });
  return bodies;
}

const models = (page: Page) => page.getByRole("group", { name: "Model" });
const lengths = (page: Page) => page.getByRole("group", { name: "Length" });

test("text to video: Wan 2.7 and Wan 2.6, durations priced, Wan 2.6 at 10 s made and named on the task", async ({ page }) => {
  await signInBySms(page);
  await openCreate(page, "text-to-video");

  // The kind's models, its default first and chosen, each with its description.
  const list = models(page);
  await expect(list.getByRole("radio")).toHaveCount(2);
  await expect(list.getByRole("radio").nth(0)).toHaveAccessibleName("Wan 2.7");
  await expect(list.getByRole("radio").nth(1)).toHaveAccessibleName("Wan 2.6");
  await expect(list.getByRole("radio", { name: "Wan 2.7" })).toBeChecked();
  await expect(list.getByRole("radio", { name: "Wan 2.7" })).toHaveAccessibleDescription(
    "Video from a text prompt, with sound, 720P or 1080P. Default",
  );
  await expect(list.getByRole("radio", { name: "Wan 2.6" })).toHaveAccessibleDescription(
    "Video from a shorter text prompt (up to 1,500 characters), 720P or 1080P.",
  );
  await expect(page.getByText("Unavailable right now")).toHaveCount(0);

  // The model's durations, its default chosen; 10 s doubles the price shown.
  await expect(lengths(page).getByRole("radio")).toHaveCount(3);
  await expect(lengths(page).getByRole("radio", { name: "5 s — 20 credits" })).toBeChecked();
  await expect(page.getByRole("radio", { name: "Standard — 20 credits" })).toBeChecked();
  await expect(page.getByTestId("price")).toHaveText(FIXED(20));
  await lengths(page).getByRole("radio", { name: /^10 s/ }).check();
  await expect(page.getByTestId("price")).toHaveText(FIXED(40));
  await expect(page.getByRole("radio", { name: "Standard — 40 credits" })).toBeChecked();
  await expect(page.getByRole("radio", { name: "HD — 60 credits" })).not.toBeChecked();
  await page.getByRole("radio", { name: /^HD/ }).check();
  await expect(page.getByTestId("price")).toHaveText(FIXED(60));
  await expect(lengths(page).getByRole("radio", { name: "15 s — 90 credits" })).toBeVisible();
  await page.getByRole("radio", { name: /^Standard/ }).check();
  await expect(page.getByTestId("price")).toHaveText(FIXED(40));

  // The prompt limit is the model's: 5,000 characters for Wan 2.7, 1,500 for Wan 2.6.
  const long = "A paper boat drifting down a rainy street. ".repeat(40); // 1,720 characters
  await page.getByLabel("Prompt").fill(long);
  await expect(page.getByText(`${long.length.toLocaleString("en-US")} / 5,000 characters`)).toBeVisible();
  await list.getByRole("radio", { name: "Wan 2.6" }).check();
  await expect(list.getByRole("radio", { name: "Wan 2.6" })).toBeChecked();
  await expect(page.getByText(`${long.length.toLocaleString("en-US")} / 1,500 characters`)).toBeVisible();
  await expect(page.getByLabel("Prompt")).toHaveAttribute("aria-invalid", "true");
  // The chosen duration and tier stay (Wan 2.6 has them too), and so does the price.
  await expect(lengths(page).getByRole("radio", { name: "10 s — 40 credits" })).toBeChecked();
  await expect(page.getByTestId("price")).toHaveText(FIXED(40));
  const requests: string[] = [];
  page.on("request", (request) => {
    if (request.url().includes("/api/videos/text-to-video")) requests.push(request.url());
  });
  await page.getByRole("button", { name: "Create video" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText(
    `The prompt is ${long.length.toLocaleString("en-US")} characters; at most 1,500 are allowed.`,
  );
  expect(requests).toHaveLength(0);

  // In Chinese, the catalog's Chinese names and descriptions.
  await page.getByLabel("Language").selectOption("zh");
  await expect(page.getByRole("group", { name: "模型" }).getByRole("radio", { name: "万相 2.6" })).toBeChecked();
  await expect(page.getByText("根据较短的文字描述（最多 1500 字）生成视频，720P 或 1080P。")).toBeVisible();
  await expect(page.getByRole("group", { name: "时长" }).getByRole("radio", { name: "10 秒 — 40 积分" })).toBeChecked();
  await page.getByLabel("语言").selectOption("en");

  // Create with Wan 2.6 at 10 s: the request names both, the server charges 40, the task shows the model.
  const prompt = "A paper boat drifting down a rainy street, cinematic";
  await page.getByLabel("Prompt").fill(prompt);
  await expect(page.getByText(`${prompt.length} / 1,500 characters`)).toBeVisible();
  await snap(page, "create-text-to-video-models");
  const sent = await recordPosts(page, "/api/videos/text-to-video");
  const id = await submitCreate(page);
  expect(sent).toHaveLength(1);
  expect(sent[0]).toMatchObject({
    prompt,
    model: "wan2.6-t2v",
    duration: 10,
    quality: "standard",
    aspect_ratio: "landscape",
  });
  expect(await serverTask(page, id)).toMatchObject({
    model: "wan2.6-t2v",
    inputs: { duration: 10 },
    credits_charged: 40,
  });
  await expect(page.getByTestId("task-model")).toHaveText("Wan 2.6");
  const details = page.locator("main dl").last();
  await expect(details.locator("dt:text-is('Model') + dd")).toHaveText("Wan 2.6");
  await expectStatus(page, "Succeeded");
  await expect(page.getByTestId("task-credits").locator("dt:text-is('Charged') + dd")).toHaveText("40");
  const task = await serverTask(page, id);
  expect(task).toMatchObject({ status: "SUCCEEDED", model: "wan2.6-t2v", credits_charged: 40, credits_refunded: 0 });
  expect((await serverCredits(page)).credits).toBe(60);
  await snap(page, "task-model");

  // The history and the dashboard name the model beside the kind.
  await page.goto("/history/");
  await expect(page.locator(`main li[data-task-id="${id}"]`)).toContainText("Text to video");
  await expect(page.locator(`main li[data-task-id="${id}"]`)).toContainText("Wan 2.6");
  await page.goto("/");
  await expect(page.locator(`main li[data-task-id="${id}"]`)).toContainText("Wan 2.6");
});

test("each kind lists its own models; image to video prices its durations; the animate kinds have no durations", async ({ page }) => {
  await signInBySms(page);
  await openCreate(page, "image-to-video");
  await expect(models(page).getByRole("radio")).toHaveCount(2);
  await expect(models(page).getByRole("radio", { name: "Wan 2.7" })).toBeChecked();
  await expect(models(page)).toContainText("Brings an image to life from a prompt; the video keeps the image's shape.");
  await expect(page.getByLabel("Image to animate")).toBeAttached();
  await expect(page.getByTestId("price")).toHaveText(FIXED(25));
  await lengths(page).getByRole("radio", { name: /^10 s/ }).check();
  await expect(page.getByTestId("price")).toHaveText(FIXED(50));
  await page.getByRole("radio", { name: /^HD/ }).check();
  await expect(page.getByTestId("price")).toHaveText(FIXED(70));
  await page.getByRole("radio", { name: /^Standard/ }).check();

  // Image to video with the default model at 10 s: model and duration go with the image.
  await upload(page, "Image to animate", "portrait.jpg", "Image upload");
  await page.getByLabel("Prompt").fill("The person smiles and waves");
  const sent = await recordPosts(page, "/api/videos/image-to-video");
  const id = await submitCreate(page);
  expect(sent).toEqual([expect.objectContaining({ model: "wan2.7-i2v", duration: 10, quality: "standard" })]);
  await expect(page.getByTestId("task-model")).toHaveText("Wan 2.7");
  await expectStatus(page, "Succeeded");
  expect(await serverTask(page, id)).toMatchObject({ model: "wan2.7-i2v", credits_charged: 50 });

  for (const [kind, name] of [
    ["animate-move", "Wan 2.2 Animate · Move"],
    ["animate-mix", "Wan 2.2 Animate · Mix"],
  ] as const) {
    await openCreate(page, kind);
    await expect(models(page).getByRole("radio")).toHaveCount(1);
    await expect(models(page).getByRole("radio", { name })).toBeChecked();
    await expect(lengths(page)).toHaveCount(0);
    await expect(page.getByTestId("price")).toContainText("10 credits per second of video");
  }
});

test("a model that cannot take tasks now is marked, and creating with it is disabled", async ({ page }) => {
  await signInBySms(page);
  // The list as the server would give it while every channel of Wan 2.6 is down.
  await page.route("**/api/videos/models", async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    for (const model of body.models) if (model.id === "wan2.6-t2v") model.available = false;
    await route.fulfill({ response, json: body });
  });
  await openCreate(page, "text-to-video");
  const wan26 = models(page).getByRole("radio", { name: "Wan 2.6" });
  await expect(wan26).toHaveAccessibleDescription(/Unavailable right now$/);
  await page.getByLabel("Prompt").fill("A lighthouse at dusk");
  await expect(page.getByRole("button", { name: "Create video" })).toBeEnabled();
  await wan26.check();
  const note = "Wan 2.6 cannot take new videos right now. Choose another model, or try again later.";
  await expect(page.getByRole("main").getByRole("status").filter({ hasText: note })).toBeVisible();
  await expect(page.getByRole("button", { name: "Create video" })).toBeDisabled();
  await expect(page.getByRole("button", { name: "Create video" })).toHaveAccessibleDescription(note);
  await snap(page, "create-model-unavailable");
  await models(page).getByRole("radio", { name: "Wan 2.7" }).check();
  await expect(page.getByRole("button", { name: "Create video" })).toBeEnabled();
  await expect(page.getByText(note)).toHaveCount(0);
});

/** The text and markup of the page as shown, lower-cased. */
async function pageText(page: Page): Promise<string> {
  return (await page.evaluate(() => `${document.title}\n${document.body.innerText}\n${document.body.outerHTML}`)).toLowerCase();
}

test("no page names Sora, in either language", async ({ page }) => {
  await page.goto("/login/");
  await expect(page.getByLabel(/phone number/i)).toBeVisible();
  expect(await pageText(page)).not.toContain("sora");
  await signInBySms(page);
  // A task to show on the dashboard, the history and its own page.
  const { api_key } = await webConfig(page.request);
  const response = await page.request.post("/api/videos/text-to-video", {
    headers: { "X-API-Key": api_key, Authorization: `Bearer ${await accessToken(page)}` },
    data: { prompt: "a lighthouse at dusk, waves below" },
  });
  expect(response.status(), await response.text()).toBe(200);
  const { task_id } = await response.json();
  await expect.poll(async () => (await serverTask(page, task_id)).status, { timeout: 30_000 }).toBe("SUCCEEDED");
  expect((await apiGet(page, `/api/tasks/${task_id}`)).model).toBe("wan2.7-t2v");

  const pages = [
    "/",
    "/create/?kind=animate-move",
    "/create/?kind=animate-mix",
    "/create/?kind=text-to-video",
    "/create/?kind=image-to-video",
    `/task/?id=${task_id}`,
    "/history/",
    "/credits/",
    "/buy/",
    "/keys/",
    "/webhooks/",
    "/profile/",
  ];
  for (const language of ["en", "zh"]) {
    await page.getByLabel("Language").selectOption(language); // the page is in English here
    for (const path of pages) {
      await page.goto(path);
      await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
      await expect(page.getByRole("status").filter({ hasText: /^(Loading…|加载中…|…)$/ })).toHaveCount(0);
      if (path.startsWith("/create/")) await expect(models(page).or(page.getByRole("group", { name: "模型" }))).toBeVisible();
      if (path.startsWith("/task/")) await expect(page.getByTestId("task-model")).toHaveText(language === "en" ? "Wan 2.7" : "万相 2.7");
      const text = await pageText(page);
      expect(text, `${path} (${language})`).not.toContain("sora");
    }
    await page.getByLabel(language === "en" ? "Language" : "语言").selectOption("en");
  }
});

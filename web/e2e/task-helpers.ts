// Helpers for the task tests: the create form, the task page, and what the server holds.
import path from "node:path";

import type { Page } from "@playwright/test";

import { apiGet, expect, SAMPLES } from "./fixtures";

export type Kind = "animate-move" | "animate-mix" | "text-to-video" | "image-to-video";

export const KIND_LABEL: Record<Kind, string> = {
  "animate-move": "Animate a photo",
  "animate-mix": "Swap into a video",
  "text-to-video": "Text to video",
  "image-to-video": "Image to video",
};

export const sample = (name: string) => path.join(SAMPLES, name);

/** The balance the server holds for the signed-in user. */
export async function serverCredits(page: Page): Promise<{ credits: number; credits_reserved: number; available: number }> {
  return apiGet(page, "/api/users/credits");
}

/** The task the server holds. */
export async function serverTask(page: Page, id: string): Promise<any> {
  return apiGet(page, `/api/tasks/${id}`);
}

/** Open the create page on one kind and check the kind's radio is the chosen one. */
export async function openCreate(page: Page, kind: Kind): Promise<void> {
  await page.goto(`/create/?kind=${kind}`);
  await expect(page.getByRole("heading", { level: 1, name: "Create a video" })).toBeVisible();
  await expect(page.getByRole("radio", { name: KIND_LABEL[kind] })).toBeChecked();
}

/** Choose a file for a labelled field and wait until its upload bar is full and the page says so. */
export async function upload(page: Page, field: string | RegExp, file: string, bar: "Image upload" | "Video upload") {
  await page.getByLabel(field).setInputFiles(sample(file));
  await expect(page.getByRole("progressbar", { name: bar })).toHaveAttribute("aria-valuenow", "100");
  await expect(page.getByText(`Uploaded ${file}`)).toBeVisible();
}

/** Press "Create video" and return the new task's id from the task page's address. */
export async function submitCreate(page: Page): Promise<string> {
  await page.getByRole("button", { name: "Create video" }).click();
  await expect(page).toHaveURL(/\/task\/\?id=[0-9a-f-]{36}$/);
  return new URL(page.url()).searchParams.get("id") as string;
}

/** Wait for the task page's status badge to read `status` (its English label). */
export async function expectStatus(page: Page, label: string | RegExp, timeout = 60_000): Promise<void> {
  await expect(page.locator("main .badge")).toHaveText(label, { timeout });
}

/** Create a text-to-video task through the form; returns its id (on its task page). */
export async function createTextToVideo(page: Page, prompt: string, quality: "Standard" | "HD" = "Standard") {
  await openCreate(page, "text-to-video");
  await page.getByLabel("Prompt").fill(prompt);
  await page.getByRole("radio", { name: new RegExp(`^${quality} —`) }).check();
  return submitCreate(page);
}

/** The result player on the task page has loaded real video: metadata, a length, a frame. */
export async function expectVideoPlays(page: Page): Promise<{ duration: number; readyState: number }> {
  const player = page.getByLabel("Your video");
  await expect(player).toBeVisible();
  const state = await player.evaluate(async (element) => {
    const video = element as HTMLVideoElement;
    video.muted = true;
    if (video.readyState < 2) {
      await new Promise<void>((resolve, reject) => {
        video.addEventListener("loadeddata", () => resolve(), { once: true });
        video.addEventListener("error", () => reject(new Error(`media error ${video.error?.code}`)), { once: true });
        video.preload = "auto";
        video.load();
      });
    }
    await video.play();
    await new Promise((resolve) => setTimeout(resolve, 400));
    video.pause();
    return { duration: video.duration, readyState: video.readyState, currentTime: video.currentTime };
  });
  expect(state.readyState).toBeGreaterThanOrEqual(2);
  expect(state.duration).toBeGreaterThan(0);
  expect(state.currentTime).toBeGreaterThan(0);
  return state;
}

/** Headers for calls made as the signed-in user. */
async function userHeaders(page: Page): Promise<Record<string, string>> {
  const config = await (await page.request.get("/api/web/config")).json();
  const token = await page.evaluate(() => localStorage.getItem("access_token"));
  return { "X-API-Key": config.api_key, Authorization: `Bearer ${token}` };
}

/** Create a text-to-video task through the API (setup, not what is under test); waits out the
 * active-task cap (429) and held credits (402) while earlier tasks finish. */
export async function createByApi(page: Page, prompt: string): Promise<string> {
  const headers = await userHeaders(page);
  for (let attempt = 0; attempt < 60; attempt += 1) {
    const response = await page.request.post("/api/videos/text-to-video", { headers, data: { prompt } });
    if (response.ok()) return (await response.json()).task_id;
    expect([402, 429], await response.text()).toContain(response.status());
    await page.waitForTimeout(1000);
  }
  throw new Error("could not create a task in time");
}

/** Cancel a task through the API, as another tab or client would. */
export async function cancelByApi(page: Page, id: string): Promise<void> {
  const response = await page.request.delete(`/api/tasks/${id}`, { headers: await userHeaders(page) });
  expect(response.status(), await response.text()).toBe(200);
}

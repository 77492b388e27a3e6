// A resumable upload survives a cut connection: one PATCH is dropped on the wire, the browser asks
// the server where the upload stands and sends the rest, and the stored file is the chosen one.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { apiGet, expect, signInBySms, test } from "./fixtures";
import { openCreate, sample, upload } from "./task-helpers";

const CHUNK = 5 * 1024 * 1024;

test("a video upload cut mid-way resumes and ends with the right file", async ({ page }) => {
  await signInBySms(page);
  await openCreate(page, "animate-move");
  const sent: { method: string; offset: string | null; url: string }[] = [];
  let cut = false;
  await page.route("**/api/uploads/tus/**", async (route) => {
    const request = route.request();
    sent.push({ method: request.method(), offset: request.headers()["upload-offset"] ?? null, url: request.url() });
    if (request.method() === "PATCH" && request.headers()["upload-offset"] === String(CHUNK) && !cut) {
      cut = true;
      await route.abort("connectionreset");
      return;
    }
    await route.continue();
  });

  await upload(page, /^Reference video/, "long.mp4", "Video upload");
  await expect(page.getByRole("main").getByRole("alert")).toHaveCount(0);

  // The second chunk was cut, the client asked where the upload stood (HEAD) and sent it again.
  expect(cut).toBe(true);
  const afterCut = sent.slice(sent.findIndex((r) => r.method === "PATCH" && r.offset === String(CHUNK)) + 1);
  expect(afterCut.map((r) => [r.method, r.offset]).slice(0, 2)).toEqual([
    ["HEAD", null],
    ["PATCH", String(CHUNK)],
  ]);
  const patches = sent.filter((r) => r.method === "PATCH").map((r) => r.offset);
  expect(patches).toEqual(["0", String(CHUNK), String(CHUNK), String(2 * CHUNK)]);

  // The row the upload became holds the chosen file's SHA-256, and so do the stored bytes.
  const file = readFileSync(sample("long.mp4"));
  const expected = createHash("sha256").update(file).digest("hex");
  expect(sent[0].method).toBe("POST");
  const location = sent.find((r) => r.method === "PATCH")?.url as string;
  const result = await apiGet(page, new URL(location).pathname);
  expect(result.sha256).toBe(expected);
  expect(result.file_size).toBe(file.length);
  const stored = await page.request.get(new URL(result.file_url).pathname);
  expect(createHash("sha256").update(await stored.body()).digest("hex")).toBe(expected);
});

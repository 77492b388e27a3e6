import { expect, test, webConfig } from "./fixtures";

test("the app and its run-time configuration are served from one origin", async ({ page }) => {
  const config = await webConfig(page.request);
  expect(config.api_key).toMatch(/^vg_/);
  await page.goto("/");
  await expect(page.getByRole("link", { name: "vidgate" }).first()).toBeVisible();
  const missing = await page.request.get("/api/no-such-endpoint");
  expect(missing.status()).toBe(404);
  expect(await missing.json()).toEqual({ detail: "Not Found" });
});

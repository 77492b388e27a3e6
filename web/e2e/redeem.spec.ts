// The redeem page: a code is asked for, refusals are explained in the reader's language, and the
// page is reachable from the credits page and the navigation.
import { expect, signInBySms, test } from "./fixtures";

test("redeem: an empty or unknown code is refused with a clear message", async ({ page }) => {
  await signInBySms(page);
  await page.goto("/credits/");
  await page.getByRole("main").getByRole("link", { name: "Redeem a code" }).click();
  await expect(page).toHaveURL(/\/redeem\/$/);
  await expect(page.getByRole("heading", { level: 1, name: "Redeem a code" })).toBeVisible();

  await page.getByRole("button", { name: "Redeem" }).click();
  await expect(page.getByText("Enter a code.")).toBeVisible();

  const field = page.getByLabel("Code", { exact: true });
  await field.fill("abcd-efgh-jklm-npqr");
  await page.getByRole("button", { name: "Redeem" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText("There is no such code. Check it for typos and try again.");
  await expect(field).toBeFocused();

  // A link from a campaign fills the field in; nothing is sent until the button is pressed.
  await page.goto("/redeem/?code=WXYZ-2345-6789-ABCD");
  await expect(page.getByLabel("Code", { exact: true })).toHaveValue("WXYZ-2345-6789-ABCD");
  await page.getByLabel("Language").selectOption("zh");
  await page.getByRole("button", { name: "兑换", exact: true }).click();
  await expect(page.getByRole("main").getByRole("alert")).toHaveText("兑换码不存在，请检查是否输入有误后重试。");
});

"use client";
// Console words shared by several pages.
import type { Schemas } from "@/lib/api/client";
import type { Translate } from "@/lib/i18n";

type UserRow = Schemas["UserSummaryOut"];

export function userState(t: Translate, user: UserRow): string {
  if (user.deleted_at) return t("admin.state.deleted");
  if (user.suspended_at) return t("admin.state.suspended");
  return t("admin.state.active");
}

export function userName(user: UserRow): string {
  return user.username || user.phone || user.email || user.id;
}

/** A JSON value in a line or a few (audit before/after, task inputs). */
export function compactJson(value: unknown): string {
  if (value === null || value === undefined) return "—";
  return JSON.stringify(value, null, 1).replace(/\n\s*/g, " ");
}

"use client";
// Task words shared by the dashboard, history and task pages.
import type { TaskView } from "@/lib/api/events";
import type { Translate } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

export function kindLabel(t: Translate, kind: string): string {
  const key = `kind.${kind}` as MessageKey;
  const text = t(key);
  return text === key ? kind : text;
}

/** What a task cost so far, in a few words: held, charged, refunded. */
export function creditsSummary(t: Translate, task: TaskView): string {
  const parts: string[] = [];
  if (task.credits_reserved > 0) parts.push(t("task.row.reserved", { n: task.credits_reserved }));
  if (task.credits_charged > 0 || (task.credits_reserved === 0 && task.credits_refunded === 0)) {
    parts.push(t("task.row.charged", { n: task.credits_charged }));
  }
  if (task.credits_refunded > 0) parts.push(t("task.row.refunded", { n: task.credits_refunded }));
  return parts.join(" · ");
}

/** "3 min" or "45 s". */
export function duration(t: Translate, seconds: number): string {
  return seconds >= 90 ? t("task.minutes", { n: Math.round(seconds / 60) }) : t("task.seconds", { n: Math.round(seconds) });
}

"use client";
// Copy a value to the clipboard, saying (to screen readers too) whether it worked.
import { useEffect, useState } from "react";

import { useI18n } from "@/lib/i18n";

import styles from "./account.module.css";

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain http on a LAN address): the old way, through a hidden text area.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch {
      done = false;
    }
    area.remove();
    return done;
  }
}

export function CopyButton({ text, label }: { text: string; label?: string }) {
  const { t } = useI18n();
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");

  useEffect(() => {
    if (state !== "copied") return;
    const timer = setTimeout(() => setState("idle"), 4000);
    return () => clearTimeout(timer);
  }, [state]);

  return (
    <>
      <button
        type="button"
        className="button secondary"
        onClick={async () => setState((await copyText(text)) ? "copied" : "failed")}
      >
        {label ?? t("common.copy")}
      </button>
      <span role="status" className={state === "failed" ? styles.copyFailed : styles.copied}>
        {state === "copied" ? t("common.copied") : state === "failed" ? t("keys.copyFailed") : ""}
      </span>
    </>
  );
}

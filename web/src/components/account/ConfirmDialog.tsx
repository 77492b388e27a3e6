"use client";
// A modal confirmation (the native <dialog>: focus stays inside, Escape cancels, focus returns to
// the button that opened it). Focus starts on the element marked data-autofocus, else on Cancel.
import { useEffect, useId, useRef, type ReactNode } from "react";

import { ErrorBox } from "@/components/ui";
import { useI18n } from "@/lib/i18n";

import styles from "./account.module.css";

export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  busyLabel,
  busy = false,
  confirmDisabled = false,
  tone = "danger",
  error,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  busyLabel: string;
  busy?: boolean;
  confirmDisabled?: boolean;
  tone?: "danger" | "primary";
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const titleId = useId();
  const bodyId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      dialog.showModal();
      const first = dialog.querySelector<HTMLElement>("[data-autofocus]") ?? cancelRef.current;
      first?.focus();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);

  return (
    <dialog
      ref={ref}
      className={styles.dialog}
      aria-labelledby={titleId}
      aria-describedby={bodyId}
      onCancel={(event) => {
        event.preventDefault(); // closing is the parent's decision (and not while busy)
        if (!busy) onCancel();
      }}
    >
      <form
        noValidate
        onSubmit={(event) => {
          event.preventDefault();
          if (!busy && !confirmDisabled) onConfirm();
        }}
      >
        <h2 id={titleId}>{title}</h2>
        <div id={bodyId}>{children}</div>
        <ErrorBox error={error} />
        <div className={styles.actions}>
          <button
            type="submit"
            className={tone === "danger" ? "button danger" : "button"}
            disabled={busy || confirmDisabled}
          >
            {busy ? busyLabel : confirmLabel}
          </button>
          <button ref={cancelRef} type="button" className="button secondary" onClick={onCancel} disabled={busy}>
            {t("common.cancel")}
          </button>
        </div>
      </form>
    </dialog>
  );
}

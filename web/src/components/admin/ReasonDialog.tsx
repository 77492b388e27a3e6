"use client";
// A confirmation that asks why: every operator action is audited with a reason of 3 characters or
// more. The dialog runs the action itself, shows its error, and closes when it succeeded.
import { useEffect, useId, useState, type ReactNode } from "react";

import { ConfirmDialog } from "@/components/account/ConfirmDialog";
import { useI18n } from "@/lib/i18n";

import { useOperatorError } from "./Console";
import styles from "./admin.module.css";

export function ReasonDialog({
  open,
  title,
  children,
  confirmLabel,
  tone = "danger",
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  tone?: "danger" | "primary";
  /** Runs the action; a throw shows its error in the dialog. */
  onConfirm: (reason: string) => Promise<void>;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const id = useId();
  const translate = useOperatorError();
  const [reason, setReason] = useState("");
  const [tried, setTried] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    if (open) {
      setReason("");
      setTried(false);
      setError(null);
    }
  }, [open]);

  const invalid = reason.trim().length < 3;

  async function confirm() {
    setTried(true);
    if (invalid) return;
    setBusy(true);
    setError(null);
    try {
      await onConfirm(reason.trim());
      onClose();
    } catch (caught) {
      setError(translate(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <ConfirmDialog
      open={open}
      title={title}
      confirmLabel={confirmLabel}
      busyLabel={t("admin.working")}
      busy={busy}
      tone={tone}
      error={error}
      onConfirm={() => void confirm()}
      onCancel={onClose}
    >
      {children}
      <div className="field">
        <label htmlFor={`${id}-reason`}>{t("admin.reason")}</label>
        <p id={`${id}-hint`} className="hint">
          {t("admin.reason.hint")}
        </p>
        <textarea
          id={`${id}-reason`}
          className={styles.textarea}
          value={reason}
          maxLength={1000}
          data-autofocus
          aria-invalid={(tried && invalid) || undefined}
          aria-describedby={tried && invalid ? `${id}-hint ${id}-error` : `${id}-hint`}
          onChange={(event) => setReason(event.target.value)}
        />
        {tried && invalid && (
          <p id={`${id}-error`} className={styles.fieldError}>
            {t("admin.reason.required")}
          </p>
        )}
      </div>
    </ConfirmDialog>
  );
}

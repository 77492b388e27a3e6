"use client";
// Small pieces every page uses: error and notice boxes, status badges, progress bars, a pager.
import type { ReactNode } from "react";

import { APIError } from "@/lib/api/client";
import { useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

/** A readable message for any error thrown by the API client. */
export function useErrorText(): (error: unknown) => string {
  const { t } = useI18n();
  return (error) => {
    if (error instanceof APIError) {
      if (error.status === 0) return t("error.network");
      return error.message;
    }
    return t("error.generic", { detail: error instanceof Error ? error.message : String(error) });
  };
}

export function ErrorBox({ error }: { error: unknown }) {
  const text = useErrorText();
  if (!error) return null;
  return (
    <div className="alert alert-error" role="alert">
      {text(error)}
    </div>
  );
}

/** A failed load: what went wrong and a button to try again. */
export function ErrorWithRetry({ error, onRetry }: { error: unknown; onRetry: () => void }) {
  const { t } = useI18n();
  return (
    <div>
      <ErrorBox error={error} />
      <button type="button" className="button secondary" onClick={onRetry}>
        {t("common.retry")}
      </button>
    </div>
  );
}

/** Example code: focusable, so a keyboard can scroll it when it is wider than the screen. */
export function CodeBlock({ label, className, children }: { label: string; className?: string; children: string }) {
  return (
    <pre className={className} tabIndex={0} role="region" aria-label={label}>
      <code>{children}</code>
    </pre>
  );
}

export function Notice({ children, tone = "info" }: { children: ReactNode; tone?: "info" | "success" | "warning" }) {
  return (
    <div className={`alert alert-${tone}`} role="status">
      {children}
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  const { t } = useI18n();
  const key = `status.${status}` as MessageKey;
  return (
    <span className={`badge badge-${status.toLowerCase()}`} data-status={status}>
      {t(key)}
    </span>
  );
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const percent = Math.max(0, Math.min(100, Math.round(value)));
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}>
      <div className="progress-fill" style={{ width: `${percent}%` }} />
      <span className="progress-text">{percent}%</span>
    </div>
  );
}

export function Pager({
  page,
  pages,
  onPage,
}: {
  page: number;
  pages: number;
  onPage: (page: number) => void;
}) {
  const { t } = useI18n();
  if (pages <= 1) return null;
  return (
    <nav className="pager" aria-label="pagination">
      <button type="button" className="button secondary" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        {t("common.previous")}
      </button>
      <span aria-live="polite">
        {page} / {pages}
      </span>
      <button type="button" className="button secondary" disabled={page >= pages} onClick={() => onPage(page + 1)}>
        {t("common.next")}
      </button>
    </nav>
  );
}

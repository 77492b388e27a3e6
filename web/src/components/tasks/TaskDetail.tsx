"use client";
// One task, live: its kind and model, status and progress over SSE, what it cost (estimated, held, charged,
// refunded), the error and the refund when it failed, the video when it succeeded, and Cancel or
// Retry when they apply. A cancel the provider could not honour (it bills what it keeps rendering)
// is said plainly, before the click and after it: such a task finishes and is charged.
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useRef, useState } from "react";

import { APIError, getApi, unwrap } from "@/lib/api/client";
import { followTask, isFinished, ownerView, type TaskView } from "@/lib/api/events";
import { useAuth } from "@/lib/auth";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import { modelName, useModels } from "@/lib/models";
import { ErrorBox, ProgressBar, StatusBadge } from "@/components/ui";

import { duration, kindLabel } from "./labels";
import styles from "./task.module.css";

const RETRYABLE = new Set(["FAILED", "TIMEOUT", "CANCELED"]);

function text(value: unknown): string | null {
  return typeof value === "string" && value ? value : null;
}

export function TaskDetail({ id }: { id: string }) {
  const { t, locale } = useI18n();
  const format = useFormat();
  const { reload } = useAuth();
  const router = useRouter();
  const models = useModels();
  const [task, setTask] = useState<TaskView | null>(null);
  const [notFound, setNotFound] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState<"cancel" | "retry" | null>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    setTask(null);
    setNotFound(false);
    setLoadError(null);
    setActionError(null);
    setConfirming(false);
    setBusy(null);
    let stop: (() => void) | null = null;
    let cancelled = false;
    void (async () => {
      try {
        const api = await getApi();
        const first = await unwrap(api.GET("/api/tasks/{task_id}", { params: { path: { task_id: id } } }));
        if (cancelled) return;
        setTask(ownerView(first));
        if (!isFinished(first.status)) {
          stop = followTask(id, (next) => {
            setTask(next);
            if (isFinished(next.status)) void reload();
          });
        }
      } catch (caught) {
        if (cancelled) return;
        if (caught instanceof APIError && (caught.status === 404 || caught.status === 422)) setNotFound(true);
        else setLoadError(caught);
      }
    })();
    return () => {
      cancelled = true;
      stop?.();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);

  const cancel = async () => {
    setBusy("cancel");
    setActionError(null);
    try {
      const api = await getApi();
      await unwrap(api.DELETE("/api/tasks/{task_id}", { params: { path: { task_id: id } } }));
      const now = await unwrap(api.GET("/api/tasks/{task_id}", { params: { path: { task_id: id } } }));
      setTask(ownerView(now));
      setConfirming(false);
      if (isFinished(now.status)) void reload();
    } catch (caught) {
      setActionError(caught);
    } finally {
      setBusy(null);
    }
  };

  const retry = async () => {
    setBusy("retry");
    setActionError(null);
    try {
      const api = await getApi();
      const answer = await unwrap(api.POST("/api/tasks/{task_id}/retry", { params: { path: { task_id: id } } }));
      void reload();
      router.push(`/task/?id=${encodeURIComponent(answer.new_task_id)}`);
    } catch (caught) {
      setActionError(caught);
      setBusy(null);
    }
  };

  if (notFound) {
    return (
      <>
        <h1>{t("task.notFound.title")}</h1>
        <p>{t("task.notFound.body")}</p>
        <p>
          <Link href="/history/">{t("task.back")}</Link>
        </p>
      </>
    );
  }

  if (!task) {
    return (
      <>
        <h1>{t("task.title")}</h1>
        <ErrorBox error={loadError} />
        {!loadError && (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        )}
      </>
    );
  }

  const open = !isFinished(task.status);
  const kind = kindLabel(t, task.task_type);
  const model = task.model ? modelName(models, task.model, locale) : null;
  const inputs = task.inputs ?? {};
  const prompt = text(inputs.prompt);
  const mode = text(inputs.mode);
  const quality = text(inputs.quality);
  const aspect = text(inputs.aspect_ratio);
  const failed = task.status === "FAILED" || task.status === "TIMEOUT";
  const paid = task.credits_charged - task.credits_refunded;
  const refund =
    open || task.status === "SUCCEEDED"
      ? null
      : task.credits_refunded > 0
        ? t("task.refunded", { n: task.credits_refunded })
        : paid === 0
          ? t("task.notCharged")
          : null;
  const live =
    task.status === "RUNNING"
      ? t("task.live.RUNNING", { n: task.progress })
      : t(`task.live.${task.status}` as MessageKey);
  const cancelRefused =
    task.cancel_outcome !== "not_cancelable"
      ? null
      : open
        ? t("task.cancelRefused.open")
        : task.status === "SUCCEEDED"
          ? t("task.cancelRefused.SUCCEEDED")
          : t("task.cancelRefused.ended");

  return (
    <div className={styles.page}>
      <p className={styles.back}>
        <Link href="/history/">← {t("task.back")}</Link>
      </p>
      <div className={styles.head}>
        <h1>{kind}</h1>
        <StatusBadge status={task.status} />
      </div>
      {model && (
        <p className={styles.model} data-testid="task-model">
          {model}
        </p>
      )}

      <section className="card" aria-label={t("task.progress")}>
        <p aria-live="polite" data-testid="task-live" className={styles.live}>
          {live}
        </p>
        {open && (
          <>
            <ProgressBar value={task.progress} label={t("task.progress")} />
            {task.cancel_outcome === "pending" ? (
              <p className="hint">{t("task.cancelRequested")}</p>
            ) : task.cancel_requested ? null : (
              task.estimated_time > 0 && (
                <p className="hint">{t("task.estimatedTime", { time: duration(t, task.estimated_time) })}</p>
              )
            )}
          </>
        )}

        {open && !task.cancel_requested && (
          <div className={styles.actions}>
            {!confirming ? (
              <button
                ref={cancelButton}
                type="button"
                className="button danger"
                onClick={() => setConfirming(true)}
                disabled={busy !== null}
              >
                {t("task.cancel")}
              </button>
            ) : (
              <div className={`alert alert-warning ${styles.confirm}`} role="group" aria-labelledby="cancel-question">
                <p id="cancel-question">{t("task.cancel.confirm")}</p>
                <div className="row">
                  <button type="button" className="button danger" onClick={() => void cancel()} disabled={busy !== null}>
                    {busy === "cancel" ? t("task.canceling") : t("task.cancel.yes")}
                  </button>
                  <button
                    type="button"
                    className="button secondary"
                    autoFocus
                    onClick={() => {
                      setConfirming(false);
                      window.setTimeout(() => cancelButton.current?.focus(), 0);
                    }}
                    disabled={busy !== null}
                  >
                    {t("task.cancel.no")}
                  </button>
                </div>
              </div>
            )}
          </div>
        )}
      </section>

      {cancelRefused && (
        <p className="alert alert-warning" role="status" data-testid="task-cancel-refused">
          {cancelRefused}
        </p>
      )}

      {failed && (
        <section className="alert alert-error" aria-labelledby="failure-heading" data-testid="task-error">
          <h2 id="failure-heading" className={styles.alertHeading}>
            {t("task.failed.title")}
          </h2>
          {task.error_message && <p>{task.error_message}</p>}
          {task.error_code && <p className="mono">{t("task.failed.code", { code: task.error_code })}</p>}
        </section>
      )}
      {refund && (
        <p className="alert alert-info" data-testid="task-refund">
          {refund}
        </p>
      )}

      {task.status === "SUCCEEDED" && (
        <section className="card" aria-labelledby="result-heading">
          <h2 id="result-heading">{t("task.result")}</h2>
          {task.result_url ? (
            <>
              <video
                className={styles.player}
                src={task.result_url}
                controls
                playsInline
                preload="metadata"
                aria-label={t("task.player")}
              />
              <p>
                <a href={task.result_url} download className="button">
                  {t("task.download")}
                </a>
              </p>
              {task.labelled && (
                <p className="hint">
                  {t("task.labelled")} · <Link href="/terms/#labels">{t("task.labelled.more")}</Link>
                </p>
              )}
            </>
          ) : task.result_expired ? (
            <p>{t("task.expired", { n: keptDays(task.completed_at, task.result_expired_at) })}</p>
          ) : (
            <p>{t("task.noResult")}</p>
          )}
        </section>
      )}

      {RETRYABLE.has(task.status) && (
        <section className="card">
          <button type="button" className="button" onClick={() => void retry()} disabled={busy !== null}>
            {busy === "retry" ? t("task.retrying") : t("task.retry")}
          </button>
          <p className="hint">{t("task.retry.note")}</p>
        </section>
      )}

      <ErrorBox error={actionError} />
      {actionError instanceof APIError && actionError.status === 402 && (
        <p>
          <Link href="/buy/" className="button">
            {t("create.buy")}
          </Link>
        </p>
      )}

      <section className="card" aria-labelledby="credits-heading">
        <h2 id="credits-heading">{t("task.credits")}</h2>
        <p className="hint">{t(task.billing_mode === "metered" ? "task.billing.metered" : "task.billing.prepaid")}</p>
        <dl className={`${styles.details} ${styles.numbers}`} data-testid="task-credits">
          <dt>{t("task.credits.estimated")}</dt>
          <dd>{format.number(task.credits_estimated)}</dd>
          <dt>{t("task.credits.reserved")}</dt>
          <dd>{format.number(task.credits_reserved)}</dd>
          <dt>{t("task.credits.charged")}</dt>
          <dd>{format.number(task.credits_charged)}</dd>
          <dt>{t("task.credits.refunded")}</dt>
          <dd>{format.number(task.credits_refunded)}</dd>
          {!open && (
            <>
              <dt>{t("task.credits.net")}</dt>
              <dd>{t("common.credits", { n: format.number(paid) })}</dd>
            </>
          )}
        </dl>
      </section>

      <section className="card" aria-labelledby="details-heading">
        <h2 id="details-heading">{t("task.details")}</h2>
        <dl className={styles.details}>
          <dt>{t("task.id")}</dt>
          <dd className="mono">{task.task_id}</dd>
          <dt>{t("task.kind")}</dt>
          <dd>{kind}</dd>
          {model && (
            <>
              <dt>{t("task.model")}</dt>
              <dd>{model}</dd>
            </>
          )}
          <dt>{t("task.created")}</dt>
          <dd>{format.date(task.created_at)}</dd>
          <dt>{t("task.finished")}</dt>
          <dd>{format.date(task.completed_at)}</dd>
          {task.result_duration_seconds != null && (
            <>
              <dt>{t("task.duration")}</dt>
              <dd>{t("task.seconds", { n: Math.round(task.result_duration_seconds * 10) / 10 })}</dd>
            </>
          )}
          {prompt && (
            <>
              <dt>{t("task.prompt")}</dt>
              <dd className={styles.prompt}>{prompt}</dd>
            </>
          )}
          {mode && (
            <>
              <dt>{t("task.mode")}</dt>
              <dd>{t(`task.mode.${mode}` as MessageKey)}</dd>
            </>
          )}
          {quality && (
            <>
              <dt>{t("task.quality")}</dt>
              <dd>{t(`task.quality.${quality}` as MessageKey)}</dd>
            </>
          )}
          {aspect && (
            <>
              <dt>{t("task.aspect")}</dt>
              <dd>{t(`task.aspect.${aspect}` as MessageKey)}</dd>
            </>
          )}
          {task.retry_of && (
            <>
              <dt>{t("task.retryOf")}</dt>
              <dd>
                <Link href={`/task/?id=${encodeURIComponent(task.retry_of)}`}>{t("task.retryOfLink")}</Link>
              </dd>
            </>
          )}
        </dl>
      </section>
    </div>
  );
}

/** Whole days between the video's completion and its deletion: how long it was kept. */
function keptDays(completedAt: string | null | undefined, expiredAt: string | null | undefined): number {
  if (!completedAt || !expiredAt) return 0;
  const days = (Date.parse(expiredAt) - Date.parse(completedAt)) / 86_400_000;
  return Math.max(0, Math.round(days));
}

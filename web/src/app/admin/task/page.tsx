"use client";
// /admin/task/?id=<task_id>: one task as operators see it: owner, model, channel and provider, what
// it cost, the vendor attempts, the video, and force-cancel (every credit back) with a reason.
// An unfinished task is read again every few seconds.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useState } from "react";

import { ConsolePage, TableWrap } from "@/components/admin/Console";
import { ReasonDialog } from "@/components/admin/ReasonDialog";
import styles from "@/components/admin/admin.module.css";
import { compactJson } from "@/components/admin/labels";
import { kindLabel } from "@/components/tasks/labels";
import { ErrorWithRetry, ProgressBar, StatusBadge } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { isFinished } from "@/lib/api/events";
import { useFormat, useI18n } from "@/lib/i18n";

type Task = Schemas["OperatorTaskView"];
const POLL_MS = 3000;

function TaskDetail({ taskId }: { taskId: string }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const [task, setTask] = useState<Task | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [asking, setAsking] = useState(false);
  const [notice, setNotice] = useState("");

  const load = useCallback(async () => {
    try {
      const api = await getApi();
      setTask(await unwrap(api.GET("/api/admin/tasks/{task_id}", { params: { path: { task_id: taskId } } })));
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [taskId]);

  useEffect(() => {
    void load();
  }, [load]);

  const finished = task ? isFinished(task.status) : true;
  useEffect(() => {
    if (finished) return;
    const timer = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(timer);
  }, [finished, load]);

  if (!task) {
    return error ? (
      <>
        <h1>{t("admin.tasks.title")}</h1>
        <ErrorWithRetry error={error} onRetry={() => void load()} />
        <p>
          <Link href="/admin/tasks/">{t("admin.task.back")}</Link>
        </p>
      </>
    ) : (
      <p className="muted" role="status">
        {t("common.loading")}
      </p>
    );
  }

  return (
    <>
      <p>
        <Link href="/admin/tasks/">{t("admin.task.back")}</Link>
      </p>
      <h1>{t("admin.task.title", { id: task.task_id.slice(0, 8) })}</h1>
      <div role="status" aria-live="polite">
        {notice && <p className="alert alert-success" data-testid="console-notice">{notice}</p>}
      </div>
      <div className="row">
        <StatusBadge status={task.status} />
        {!finished && (
          <button type="button" className="button danger" onClick={() => setAsking(true)}>
            {t("admin.task.forceCancel")}
          </button>
        )}
      </div>

      <div className={styles.panels}>
        <section className="card" aria-labelledby="task-facts">
          <h2 id="task-facts">{t("admin.col.task")}</h2>
          <dl className={styles.facts} data-testid="admin-task-facts">
            <dt>{t("admin.user.id")}</dt>
            <dd className="mono">{task.task_id}</dd>
            <dt>{t("admin.task.user")}</dt>
            <dd className="mono">
              <Link href={`/admin/user/?id=${task.user_id}`}>{task.user_id}</Link>
            </dd>
            <dt>{t("admin.col.kind")}</dt>
            <dd>{kindLabel(t, task.task_type)}</dd>
            <dt>{t("admin.col.model")}</dt>
            <dd>{task.model ?? "—"}</dd>
            <dt>{t("admin.col.channel")}</dt>
            <dd>{task.channel ?? "—"}</dd>
            <dt>{t("admin.task.provider")}</dt>
            <dd>{task.provider}</dd>
            <dt>{t("admin.task.upstream")}</dt>
            <dd className="mono">{task.upstream_id ?? "—"}</dd>
            <dt>{t("admin.task.upstreamStatus")}</dt>
            <dd>{task.upstream_status ?? "—"}</dd>
            <dt>{t("admin.col.created")}</dt>
            <dd>{date(task.created_at)}</dd>
            <dt>{t("admin.task.updated")}</dt>
            <dd>{date(task.updated_at)}</dd>
            <dt>{t("admin.task.completed")}</dt>
            <dd>{date(task.completed_at)}</dd>
            {task.cancel_outcome && (
              <>
                <dt>{t("admin.task.cancel")}</dt>
                <dd>{task.cancel_message ?? task.cancel_outcome}</dd>
              </>
            )}
          </dl>
          {!finished && <ProgressBar value={task.progress} label={t("admin.task.progress")} />}
        </section>
        <section className="card" aria-labelledby="task-credits">
          <h2 id="task-credits">{t("admin.col.credits")}</h2>
          <dl className={styles.facts} data-testid="admin-task-credits">
            <dt>{t("admin.task.billing")}</dt>
            <dd>{task.billing_mode}</dd>
            <dt>{t("admin.task.estimated")}</dt>
            <dd>{number(task.credits_estimated)}</dd>
            <dt>{t("admin.task.reserved")}</dt>
            <dd>{number(task.credits_reserved)}</dd>
            <dt>{t("admin.col.charged")}</dt>
            <dd>{number(task.credits_charged)}</dd>
            <dt>{t("admin.col.refunded")}</dt>
            <dd data-testid="admin-task-refunded">{number(task.credits_refunded)}</dd>
          </dl>
          {task.error_message && (
            <p className="alert alert-error" data-testid="admin-task-error">
              {t("admin.task.error")}: {task.error_code ? `${task.error_code} — ` : ""}
              {task.error_message}
            </p>
          )}
        </section>
      </div>

      {task.result_url && (
        <section className="card" aria-labelledby="task-result">
          <h2 id="task-result">{t("admin.task.result")}</h2>
          <video className={styles.player} src={task.result_url} controls playsInline preload="metadata" aria-label={t("admin.task.player")} />
        </section>
      )}

      <h2>{t("admin.task.attempts")}</h2>
      {(task.attempts ?? []).length === 0 ? (
        <p className="muted">{t("admin.task.noAttempts")}</p>
      ) : (
        <TableWrap label={t("admin.task.attempts")}>
          <table data-testid="admin-task-attempts">
            <thead>
              <tr>
                <th scope="col">{t("admin.col.channel")}</th>
                <th scope="col">{t("admin.task.adapter")}</th>
                <th scope="col">{t("admin.task.outcome")}</th>
                <th scope="col">{t("admin.task.error")}</th>
                <th scope="col">{t("admin.task.upstream")}</th>
                <th scope="col">{t("admin.task.started")}</th>
                <th scope="col">{t("admin.task.finished")}</th>
              </tr>
            </thead>
            <tbody>
              {(task.attempts ?? []).map((attempt, index) => (
                <tr key={`${attempt.channel}-${index}`}>
                  <td>{attempt.channel}</td>
                  <td>{attempt.adapter}</td>
                  <td>{attempt.outcome}</td>
                  <td>{attempt.error_code ? `${attempt.error_code}: ${attempt.error_message ?? ""}` : "—"}</td>
                  <td className="mono">{attempt.upstream_id ?? "—"}</td>
                  <td className={styles.nowrap}>{date(attempt.started_at)}</td>
                  <td className={styles.nowrap}>{date(attempt.finished_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <h2>{t("admin.task.inputs")}</h2>
      <pre className={`card ${styles.json}`} tabIndex={0} role="region" aria-label={t("admin.task.inputs")}>
        {JSON.stringify(task.inputs, null, 2) || compactJson(task.inputs)}
      </pre>

      <ReasonDialog
        open={asking}
        title={t("admin.task.forceCancel.title")}
        confirmLabel={t("admin.task.forceCancel")}
        onClose={() => setAsking(false)}
        onConfirm={async (reason) => {
          const api = await getApi();
          const out = await unwrap(
            api.POST("/api/admin/tasks/{task_id}/cancel", { params: { path: { task_id: task.task_id } }, body: { reason } }),
          );
          setTask(out);
          setNotice(t("admin.task.canceled"));
        }}
      >
        <p>{t("admin.task.forceCancel.body")}</p>
      </ReasonDialog>
    </>
  );
}

function TaskFromQuery() {
  const { t } = useI18n();
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <>
        <h1>{t("admin.tasks.title")}</h1>
        <p>{t("admin.task.missing")}</p>
        <p>
          <Link href="/admin/tasks/">{t("admin.task.back")}</Link>
        </p>
      </>
    );
  }
  return <TaskDetail key={id} taskId={id} />;
}

export default function AdminTaskPage() {
  return (
    <ConsolePage>
      {() => (
        <Suspense fallback={null}>
          <TaskFromQuery />
        </Suspense>
      )}
    </ConsolePage>
  );
}

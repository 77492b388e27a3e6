"use client";
// /admin/tasks/: every user's tasks, newest first, filtered by status, kind, model, channel, user
// and time; the filters live in the address.
import Link from "next/link";
import { Suspense, useId } from "react";

import { ConsolePage, shortId, TableWrap } from "@/components/admin/Console";
import styles from "@/components/admin/admin.module.css";
import { useFilteredList } from "@/components/admin/useFilters";
import { kindLabel } from "@/components/tasks/labels";
import { ErrorBox, Pager, StatusBadge } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import type { paths } from "@/lib/api/schema";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

const PAGE_SIZE = 20;
const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"] as const;
const KINDS = ["animate-move", "animate-mix", "text-to-video", "image-to-video"] as const;
const KEYS = ["status", "kind", "model", "channel", "user_id", "since", "until"] as const;
type Key = (typeof KEYS)[number];
type Query = NonNullable<paths["/api/admin/tasks"]["get"]["parameters"]["query"]>;

function Tasks() {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const id = useId();
  const { page, go, draft, setDraft, list, error, submit, pages } = useFilteredList(
    KEYS,
    PAGE_SIZE,
    async (query): Promise<Schemas["OperatorTaskList"]> =>
      unwrap((await getApi()).GET("/api/admin/tasks", { params: { query: query as Query } })),
  );

  const field = (key: Key, label: MessageKey, type = "text") => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{t(label)}</label>
      <input
        id={`${id}-${key}`}
        type={type}
        className={styles.dateInput}
        value={draft[key]}
        onChange={(event) => setDraft({ ...draft, [key]: event.target.value })}
      />
    </div>
  );

  return (
    <>
      <h1>{t("admin.tasks.title")}</h1>
      <form onSubmit={submit} className={styles.filters} aria-label={t("admin.filter")}>
        <div className="field">
          <label htmlFor={`${id}-status`}>{t("admin.tasks.status")}</label>
          <select id={`${id}-status`} value={draft.status} onChange={(event) => setDraft({ ...draft, status: event.target.value })}>
            <option value="">{t("admin.tasks.any")}</option>
            {STATUSES.map((value) => (
              <option key={value} value={value}>
                {t(`status.${value}` as MessageKey)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-kind`}>{t("admin.tasks.kind")}</label>
          <select id={`${id}-kind`} value={draft.kind} onChange={(event) => setDraft({ ...draft, kind: event.target.value })}>
            <option value="">{t("admin.tasks.any")}</option>
            {KINDS.map((value) => (
              <option key={value} value={value}>
                {kindLabel(t, value)}
              </option>
            ))}
          </select>
        </div>
        {field("model", "admin.tasks.model")}
        {field("channel", "admin.tasks.channel")}
        {field("user_id", "admin.tasks.userId")}
        {field("since", "admin.tasks.since", "datetime-local")}
        {field("until", "admin.tasks.until", "datetime-local")}
        <div className={styles.filterActions}>
          <button type="submit" className="button">
            {t("admin.filter")}
          </button>
          <button
            type="button"
            className="button secondary"
            onClick={() => go(Object.fromEntries(KEYS.map((key) => [key, ""])) as Record<Key, string>)}
          >
            {t("admin.clear")}
          </button>
        </div>
      </form>
      <ErrorBox error={error} />
      {!list && !error && (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      )}
      {list && (
        <>
          <p className="muted" role="status" data-testid="tasks-total">
            {t("admin.total", { n: list.total })}
          </p>
          {list.tasks.length === 0 ? (
            <p>{t("admin.empty")}</p>
          ) : (
            <TableWrap label={t("admin.tasks.caption")}>
              <table>
                <caption className="visually-hidden">{t("admin.tasks.caption")}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("admin.col.task")}</th>
                    <th scope="col">{t("admin.col.user")}</th>
                    <th scope="col">{t("admin.col.kind")}</th>
                    <th scope="col">{t("admin.col.model")}</th>
                    <th scope="col">{t("admin.col.channel")}</th>
                    <th scope="col">{t("admin.col.status")}</th>
                    <th scope="col">{t("admin.col.charged")}</th>
                    <th scope="col">{t("admin.col.refunded")}</th>
                    <th scope="col">{t("admin.col.created")}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.tasks.map((task) => (
                    <tr key={task.task_id} data-task-id={task.task_id}>
                      <td className="mono">
                        <Link href={`/admin/task/?id=${task.task_id}`} title={task.task_id}>
                          {shortId(task.task_id)}
                        </Link>
                      </td>
                      <td className="mono">
                        <Link href={`/admin/user/?id=${task.user_id}`} title={task.user_id}>
                          {shortId(task.user_id)}
                        </Link>
                      </td>
                      <td>{kindLabel(t, task.task_type)}</td>
                      <td>{task.model ?? "—"}</td>
                      <td>{task.channel ?? "—"}</td>
                      <td>
                        <StatusBadge status={task.status} />
                      </td>
                      <td>{number(task.credits_charged)}</td>
                      <td>{number(task.credits_refunded)}</td>
                      <td className={styles.nowrap}>{date(task.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
          <Pager page={page} pages={pages} onPage={(next) => go({}, next)} />
        </>
      )}
    </>
  );
}

export default function AdminTasksPage() {
  return (
    <ConsolePage>
      {() => (
        <Suspense fallback={null}>
          <Tasks />
        </Suspense>
      )}
    </ConsolePage>
  );
}

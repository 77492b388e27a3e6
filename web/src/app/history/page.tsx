"use client";
// All of the user's tasks, newest first, filtered by status and paged; the filter and page live
// in the address (?status=FAILED&page=2) so Back and shared links keep them.
import Link from "next/link";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useId, useState } from "react";

import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { isFinished } from "@/lib/api/events";
import { RequireAuth, useAuth } from "@/lib/auth";
import { useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import { ErrorBox, Pager } from "@/components/ui";
import { TaskRows } from "@/components/tasks/TaskRows";
import { replaceTask, useFollowTasks } from "@/components/tasks/useFollowTasks";

const PAGE_SIZE = 10;
const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"] as const;
type Status = (typeof STATUSES)[number];

function History() {
  const { t } = useI18n();
  const { reload } = useAuth();
  const id = useId();
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const rawStatus = params.get("status");
  const status = (STATUSES as readonly string[]).includes(rawStatus ?? "") ? (rawStatus as Status) : null;
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const [list, setList] = useState<Schemas["TaskList"] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      const query = { page, page_size: PAGE_SIZE, ...(status ? { status } : {}) };
      setList(await unwrap(api.GET("/api/tasks/user/tasks", { params: { query } })));
    } catch (caught) {
      setError(caught);
    }
  }, [page, status]);

  useEffect(() => {
    void load();
  }, [load]);

  useFollowTasks(list?.tasks ?? null, (task) => {
    setList((current) => (current ? { ...current, tasks: replaceTask(current.tasks, task) ?? [] } : current));
    if (isFinished(task.status)) void reload();
  });

  const go = (next: { status?: Status | null; page?: number }) => {
    const query = new URLSearchParams();
    const nextStatus = next.status === undefined ? status : next.status;
    const nextPage = next.page ?? 1;
    if (nextStatus) query.set("status", nextStatus);
    if (nextPage > 1) query.set("page", String(nextPage));
    const search = query.toString();
    router.push(search ? `${pathname}?${search}` : pathname);
  };

  const pages = list ? Math.max(1, Math.ceil(list.total / PAGE_SIZE)) : 1;

  return (
    <>
      <h1>{t("history.title")}</h1>
      <div className="row">
        <div className="field">
          <label htmlFor={`${id}-status`}>{t("history.filter")}</label>
          <select
            id={`${id}-status`}
            value={status ?? ""}
            onChange={(event) => go({ status: (event.target.value || null) as Status | null })}
          >
            <option value="">{t("history.filter.all")}</option>
            {STATUSES.map((value) => (
              <option key={value} value={value}>
                {t(`status.${value}` as MessageKey)}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorBox error={error} />
      {list === null && !error && (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      )}
      {list && (
        <>
          <p className="muted" role="status" data-testid="history-total">
            {list.total === 1 ? t("history.total.one") : t("history.total", { n: list.total })}
          </p>
          {list.tasks.length === 0 ? (
            <div className="card">
              <p>{status ? t("history.emptyFiltered") : t("history.empty")}</p>
              {!status && <Link href="/create/">{t("history.create")}</Link>}
            </div>
          ) : (
            <TaskRows tasks={list.tasks} />
          )}
          <Pager page={page} pages={pages} onPage={(next) => go({ page: next })} />
        </>
      )}
    </>
  );
}

export default function HistoryPage() {
  return (
    <RequireAuth>
      <Suspense fallback={null}>
        <History />
      </Suspense>
    </RequireAuth>
  );
}

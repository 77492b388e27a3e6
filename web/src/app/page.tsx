"use client";
// The dashboard: the balance (total, held, available), the latest tasks with live progress, and
// the way to make or pay for more.
import Link from "next/link";
import { useCallback, useEffect, useState } from "react";

import { getApi, unwrap } from "@/lib/api/client";
import { isFinished, type TaskView } from "@/lib/api/events";
import { RequireAuth, useAuth } from "@/lib/auth";
import { useFormat, useI18n } from "@/lib/i18n";
import { ErrorBox } from "@/components/ui";
import { TaskRows } from "@/components/tasks/TaskRows";
import { replaceTask, useFollowTasks } from "@/components/tasks/useFollowTasks";

import styles from "./dashboard.module.css";

const RECENT = 5;

function Dashboard() {
  const { t } = useI18n();
  const format = useFormat();
  const { user, reload } = useAuth();
  const [tasks, setTasks] = useState<TaskView[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      const list = await unwrap(api.GET("/api/tasks/user/tasks", { params: { query: { page: 1, page_size: RECENT } } }));
      setTasks(list.tasks);
    } catch (caught) {
      setError(caught);
    }
  }, []);

  useEffect(() => {
    void load();
    void reload(); // the balance may have moved since the header loaded it
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [load]);

  useFollowTasks(tasks, (task) => {
    setTasks((current) => replaceTask(current, task));
    if (isFinished(task.status)) void reload();
  });

  return (
    <>
      <h1>{t("dashboard.title")}</h1>
      {user && <p className="muted">{t("dashboard.greeting", { name: user.username })}</p>}

      <section aria-labelledby="balance-heading">
        <h2 id="balance-heading" className="visually-hidden">
          {t("dashboard.balance.heading")}
        </h2>
        {user && (
          <div className="grid">
            <div className="card" data-testid="stat-balance">
              <div className="muted">{t("common.balance")}</div>
              <div className="stat">{format.number(user.credits)}</div>
              <p className="hint">{t("dashboard.balance.hint")}</p>
            </div>
            <div className="card" data-testid="stat-reserved">
              <div className="muted">{t("common.reserved")}</div>
              <div className="stat">{format.number(user.credits_reserved)}</div>
              <p className="hint">{t("dashboard.reserved.hint")}</p>
            </div>
            <div className="card" data-testid="stat-available">
              <div className="muted">{t("common.available")}</div>
              <div className="stat">{format.number(user.available)}</div>
              <p className="hint">{t("dashboard.available.hint")}</p>
            </div>
          </div>
        )}
        <p className="row">
          <Link href="/create/" className="button">
            {t("dashboard.create")}
          </Link>
          <Link href="/buy/" className="button secondary">
            {t("dashboard.buy")}
          </Link>
        </p>
      </section>

      <section aria-labelledby="recent-heading">
        <div className={styles.sectionHead}>
          <h2 id="recent-heading">{t("dashboard.recent")}</h2>
          {tasks && tasks.length > 0 && <Link href="/history/">{t("dashboard.all")}</Link>}
        </div>
        <ErrorBox error={error} />
        {tasks === null && !error && (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        )}
        {tasks && tasks.length === 0 && (
          <div className="card">
            <p>{t("dashboard.empty")}</p>
            <Link href="/create/">{t("dashboard.emptyAction")}</Link>
          </div>
        )}
        {tasks && tasks.length > 0 && <TaskRows tasks={tasks} />}
      </section>
    </>
  );
}

export default function DashboardPage() {
  return (
    <RequireAuth>
      <Dashboard />
    </RequireAuth>
  );
}

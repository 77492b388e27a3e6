"use client";
// A list of tasks as rows that fold into cards on a phone: kind (linking to the task) and model, status,
// live progress, when, and what it cost.
import Link from "next/link";

import { isFinished, type TaskView } from "@/lib/api/events";
import { useFormat, useI18n } from "@/lib/i18n";
import { modelName, useModels } from "@/lib/models";
import { ProgressBar, StatusBadge } from "@/components/ui";

import { creditsSummary, kindLabel } from "./labels";
import styles from "./tasks.module.css";

export function TaskRows({ tasks }: { tasks: TaskView[] }) {
  const { t, locale } = useI18n();
  const format = useFormat();
  const models = useModels();
  return (
    <ul className={styles.rows}>
      {tasks.map((task) => {
        const kind = kindLabel(t, task.task_type);
        return (
          <li key={task.task_id} className={styles.row} data-task-id={task.task_id}>
            <div className={styles.main}>
              <span className={styles.title}>
                <Link href={`/task/?id=${encodeURIComponent(task.task_id)}`} className={styles.kind}>
                  {kind}
                </Link>
                {task.model && <span className={styles.model}>{modelName(models, task.model, locale)}</span>}
              </span>
              <span className="muted">{t("task.row.created", { date: format.date(task.created_at) })}</span>
              {typeof task.inputs?.prompt === "string" && (
                <span className={styles.prompt}>{task.inputs.prompt}</span>
              )}
            </div>
            <div className={styles.state}>
              <StatusBadge status={task.status} />
              {!isFinished(task.status) && (
                <ProgressBar value={task.progress} label={`${t("task.progress")}: ${kind}`} />
              )}
            </div>
            <div className={styles.credits}>{creditsSummary(t, task)}</div>
          </li>
        );
      })}
    </ul>
  );
}

"use client";
// /task/?id=<task_id>: a static export has no dynamic segments, so the id rides in the query.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense } from "react";

import { RequireAuth } from "@/lib/auth";
import { useI18n } from "@/lib/i18n";
import { TaskDetail } from "@/components/tasks/TaskDetail";

function TaskFromQuery() {
  const { t } = useI18n();
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <>
        <h1>{t("task.notFound.title")}</h1>
        <p>{t("task.missingId")}</p>
        <p>
          <Link href="/history/">{t("task.back")}</Link>
        </p>
      </>
    );
  }
  return <TaskDetail key={id} id={id} />;
}

export default function TaskPage() {
  return (
    <RequireAuth>
      <Suspense fallback={null}>
        <TaskFromQuery />
      </Suspense>
    </RequireAuth>
  );
}

"use client";
// /admin/audit/: the append-only audit log, newest first, filtered by actor, action, target and
// time; the filters live in the address.
import Link from "next/link";
import { Suspense, useId } from "react";

import { ConsolePage, shortId, TableWrap } from "@/components/admin/Console";
import styles from "@/components/admin/admin.module.css";
import { compactJson } from "@/components/admin/labels";
import { useFilteredList } from "@/components/admin/useFilters";
import { ErrorBox, Pager } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import type { paths } from "@/lib/api/schema";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

const PAGE_SIZE = 25;
const KEYS = ["actor_id", "action", "target_type", "target_id", "since", "until"] as const;
type Key = (typeof KEYS)[number];
type Query = NonNullable<paths["/api/admin/audit"]["get"]["parameters"]["query"]>;

const LABELS: Record<Key, MessageKey> = {
  actor_id: "admin.audit.actorId",
  action: "admin.audit.action",
  target_type: "admin.audit.targetType",
  target_id: "admin.audit.targetId",
  since: "admin.audit.since",
  until: "admin.audit.until",
};

function targetLink(type: string, id: string): string | null {
  if (type === "user") return `/admin/user/?id=${id}`;
  if (type === "task") return `/admin/task/?id=${id}`;
  if (type === "channel") return "/admin/channels/";
  return null;
}

function Audit() {
  const { t } = useI18n();
  const { date } = useFormat();
  const id = useId();
  const { page, go, draft, setDraft, list, error, submit, pages } = useFilteredList(
    KEYS,
    PAGE_SIZE,
    async (query): Promise<Schemas["AuditPage"]> =>
      unwrap((await getApi()).GET("/api/admin/audit", { params: { query: query as Query } })),
  );

  return (
    <>
      <h1>{t("admin.audit.title")}</h1>
      <form onSubmit={submit} className={styles.filters} aria-label={t("admin.filter")}>
        {KEYS.map((key) => (
          <div className="field" key={key}>
            <label htmlFor={`${id}-${key}`}>{t(LABELS[key])}</label>
            <input
              id={`${id}-${key}`}
              type={key === "since" || key === "until" ? "datetime-local" : "text"}
              className={styles.dateInput}
              value={draft[key]}
              onChange={(event) => setDraft({ ...draft, [key]: event.target.value })}
            />
          </div>
        ))}
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
          <p className="muted" role="status" data-testid="audit-total">
            {t("admin.total", { n: list.total })}
          </p>
          {list.entries.length === 0 ? (
            <p>{t("admin.empty")}</p>
          ) : (
            <TableWrap label={t("admin.audit.caption")}>
              <table data-testid="audit">
                <caption className="visually-hidden">{t("admin.audit.caption")}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("admin.col.when")}</th>
                    <th scope="col">{t("admin.audit.actor")}</th>
                    <th scope="col">{t("admin.audit.action")}</th>
                    <th scope="col">{t("admin.audit.target")}</th>
                    <th scope="col">{t("admin.reason")}</th>
                    <th scope="col">{t("admin.audit.change")}</th>
                    <th scope="col">{t("admin.audit.request")}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.entries.map((entry) => {
                    const href = targetLink(entry.target_type, entry.target_id);
                    return (
                      <tr key={entry.id} data-action={entry.action}>
                        <td className={styles.nowrap}>{date(entry.at)}</td>
                        <td>{entry.actor}</td>
                        <td className="mono">{entry.action}</td>
                        <td>
                          {entry.target_type}:{" "}
                          {href ? (
                            <Link href={href} title={entry.target_id}>
                              {shortId(entry.target_id)}
                            </Link>
                          ) : (
                            <span className="mono">{entry.target_id}</span>
                          )}
                        </td>
                        <td>{entry.reason ?? "—"}</td>
                        <td>
                          {entry.before || entry.after ? (
                            <code className={styles.json}>
                              {compactJson(entry.before)} → {compactJson(entry.after)}
                            </code>
                          ) : (
                            "—"
                          )}
                        </td>
                        <td className={`mono ${styles.small}`}>{entry.request_id ? shortId(entry.request_id) : "—"}</td>
                      </tr>
                    );
                  })}
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

export default function AdminAuditPage() {
  return (
    <ConsolePage>
      {() => (
        <Suspense fallback={null}>
          <Audit />
        </Suspense>
      )}
    </ConsolePage>
  );
}

"use client";
// /admin/users/: accounts by id, phone (any part of the digits), email or username, newest first.
import Link from "next/link";
import { Suspense, useCallback, useEffect, useId, useState, type FormEvent } from "react";

import { ConsolePage, roleLabel, TableWrap } from "@/components/admin/Console";
import styles from "@/components/admin/admin.module.css";
import { userName, userState } from "@/components/admin/labels";
import { useFilters } from "@/components/admin/useFilters";
import { ErrorBox, Pager } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useFormat, useI18n } from "@/lib/i18n";

const PAGE_SIZE = 20;

function Users() {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const id = useId();
  const { values, page, go } = useFilters(["q"] as const);
  const [draft, setDraft] = useState(values.q);
  const [list, setList] = useState<Schemas["UserSearchOut"] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => setDraft(values.q), [values.q]);

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      setList(await unwrap(api.GET("/api/admin/users", { params: { query: { q: values.q, page, page_size: PAGE_SIZE } } })));
    } catch (caught) {
      setError(caught);
    }
  }, [values.q, page]);

  useEffect(() => {
    void load();
  }, [load]);

  function submit(event: FormEvent) {
    event.preventDefault();
    go({ q: draft });
  }

  const pages = list ? Math.max(1, Math.ceil(list.total / PAGE_SIZE)) : 1;

  return (
    <>
      <h1>{t("admin.users.title")}</h1>
      <form role="search" onSubmit={submit} className={styles.filters}>
        <div className="field">
          <label htmlFor={`${id}-q`}>{t("admin.users.query")}</label>
          <input id={`${id}-q`} type="text" value={draft} maxLength={320} onChange={(event) => setDraft(event.target.value)} />
        </div>
        <div className={styles.filterActions}>
          <button type="submit" className="button">
            {t("admin.search")}
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
          <p className="muted" role="status" data-testid="users-total">
            {t("admin.total", { n: list.total })}
          </p>
          {list.users.length === 0 ? (
            <p>{t("admin.empty")}</p>
          ) : (
            <TableWrap label={t("admin.users.caption")}>
              <table>
                <caption className="visually-hidden">{t("admin.users.caption")}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("admin.col.user")}</th>
                    <th scope="col">{t("admin.col.phone")}</th>
                    <th scope="col">{t("admin.col.email")}</th>
                    <th scope="col">{t("admin.col.role")}</th>
                    <th scope="col">{t("admin.col.credits")}</th>
                    <th scope="col">{t("admin.col.state")}</th>
                    <th scope="col">{t("admin.col.created")}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.users.map((user) => (
                    <tr key={user.id} data-user-id={user.id}>
                      <th scope="row">
                        <Link href={`/admin/user/?id=${user.id}`}>{userName(user)}</Link>
                      </th>
                      <td className={styles.nowrap}>{user.phone ?? "—"}</td>
                      <td>{user.email ?? "—"}</td>
                      <td>{roleLabel(t, user.role)}</td>
                      <td>{number(user.credits)}</td>
                      <td>{userState(t, user)}</td>
                      <td className={styles.nowrap}>{date(user.created_at)}</td>
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

export default function AdminUsersPage() {
  return (
    <ConsolePage>
      {() => (
        <Suspense fallback={null}>
          <Users />
        </Suspense>
      )}
    </ConsolePage>
  );
}

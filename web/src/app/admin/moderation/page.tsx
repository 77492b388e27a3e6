"use client";
// /admin/moderation/: the prompts content screening refused, newest first, optionally of one
// user; the filter lives in the address.
import Link from "next/link";
import { Suspense, useId } from "react";

import { ConsolePage, shortId, TableWrap } from "@/components/admin/Console";
import styles from "@/components/admin/admin.module.css";
import { useFilteredList } from "@/components/admin/useFilters";
import { ErrorBox, Pager } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import type { paths } from "@/lib/api/schema";
import { useFormat, useI18n } from "@/lib/i18n";

const PAGE_SIZE = 25;
const KEYS = ["user_id"] as const;
type Query = NonNullable<paths["/api/admin/moderation/blocks"]["get"]["parameters"]["query"]>;

function Blocks() {
  const { t } = useI18n();
  const { date } = useFormat();
  const id = useId();
  const { page, go, draft, setDraft, list, error, submit, pages } = useFilteredList(
    KEYS,
    PAGE_SIZE,
    async (query): Promise<Schemas["BlockPage"]> =>
      unwrap(
        (await getApi()).GET("/api/admin/moderation/blocks", { params: { query: query as Query } }),
      ),
  );

  return (
    <>
      <h1>{t("admin.moderation.title")}</h1>
      <form onSubmit={submit} className={styles.filters} aria-label={t("admin.filter")}>
        <div className="field">
          <label htmlFor={`${id}-user`}>{t("admin.moderation.userId")}</label>
          <input
            id={`${id}-user`}
            type="text"
            value={draft.user_id}
            onChange={(event) => setDraft({ ...draft, user_id: event.target.value })}
          />
        </div>
        <div className={styles.filterActions}>
          <button type="submit" className="button">
            {t("admin.filter")}
          </button>
          <button type="button" className="button secondary" onClick={() => go({ user_id: "" })}>
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
          <p className="muted" role="status" data-testid="moderation-total">
            {t("admin.total", { n: list.total })}
          </p>
          {list.blocks.length === 0 ? (
            <p>{t("admin.empty")}</p>
          ) : (
            <TableWrap label={t("admin.moderation.caption")}>
              <table data-testid="moderation-blocks">
                <caption className="visually-hidden">{t("admin.moderation.caption")}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("admin.col.when")}</th>
                    <th scope="col">{t("admin.col.user")}</th>
                    <th scope="col">{t("admin.col.kind")}</th>
                    <th scope="col">{t("admin.moderation.source")}</th>
                    <th scope="col">{t("admin.moderation.category")}</th>
                    <th scope="col">{t("admin.moderation.rule")}</th>
                    <th scope="col">{t("admin.moderation.prompt")}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.blocks.map((block) => (
                    <tr key={block.id}>
                      <td className={styles.nowrap}>{date(block.at)}</td>
                      <td>
                        <Link href={`/admin/user/?id=${block.user_id}`} title={block.user_id}>
                          {shortId(block.user_id)}
                        </Link>
                      </td>
                      <td className="mono">{block.kind}</td>
                      <td>{block.source}</td>
                      <td>{block.category}</td>
                      <td className={styles.small}>{block.rule}</td>
                      <td>{block.prompt_excerpt}</td>
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

export default function AdminModerationPage() {
  return (
    <ConsolePage>
      {() => (
        <Suspense fallback={null}>
          <Blocks />
        </Suspense>
      )}
    </ConsolePage>
  );
}

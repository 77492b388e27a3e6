"use client";
// /admin/codes/: batches of redemption codes, newest first, with how much each has been used; admins
// create a batch (credits each, how many, uses per code, expiry, note, and a reason) and see its
// codes at once.
import Link from "next/link";
import { Suspense, useCallback, useEffect, useId, useState, type FormEvent } from "react";

import { ConsolePage, shortId, TableWrap } from "@/components/admin/Console";
import { ReasonDialog } from "@/components/admin/ReasonDialog";
import styles from "@/components/admin/admin.module.css";
import { instant, useFilters } from "@/components/admin/useFilters";
import { ErrorBox, Pager } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useFormat, useI18n } from "@/lib/i18n";
import type { Operator } from "@/lib/operator";

const PAGE_SIZE = 20;
const KEYS = [] as const;
type Draft = { credits: string; count: string; max_uses: string; expires_at: string; note: string };
const EMPTY: Draft = { credits: "100", count: "10", max_uses: "1", expires_at: "", note: "" };

function wholeNumber(text: string, min: number, max: number): number | null {
  if (!/^\d+$/.test(text.trim())) return null;
  const value = Number(text.trim());
  return value >= min && value <= max ? value : null;
}

function CreateBatch({ onCreated }: { onCreated: (made: Schemas["BatchWithCodes"]) => void }) {
  const { t } = useI18n();
  const { number } = useFormat();
  const id = useId();
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [invalid, setInvalid] = useState(false);
  const [asking, setAsking] = useState(false);

  const credits = wholeNumber(draft.credits, 1, 1_000_000);
  const count = wholeNumber(draft.count, 1, 10_000);
  const maxUses = wholeNumber(draft.max_uses, 1, 1_000_000);

  function submit(event: FormEvent) {
    event.preventDefault();
    const bad = credits === null || count === null || maxUses === null;
    setInvalid(bad);
    if (!bad) setAsking(true);
  }

  const field = (key: keyof Draft, label: Parameters<typeof t>[0], type = "text") => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{t(label)}</label>
      <input
        id={`${id}-${key}`}
        type={type}
        inputMode={type === "text" && key !== "note" ? "numeric" : undefined}
        className={styles.dateInput}
        value={draft[key]}
        maxLength={key === "note" ? 500 : undefined}
        aria-invalid={(invalid && key !== "note" && key !== "expires_at") || undefined}
        aria-describedby={invalid && key !== "note" && key !== "expires_at" ? `${id}-error` : undefined}
        onChange={(event) => setDraft({ ...draft, [key]: event.target.value })}
      />
    </div>
  );

  return (
    <>
      <form onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`}>{t("admin.codes.create")}</h2>
        <div className={styles.filters}>
          {field("credits", "admin.codes.credits")}
          {field("count", "admin.codes.count")}
          {field("max_uses", "admin.codes.maxUses")}
          {field("expires_at", "admin.codes.expires", "datetime-local")}
          {field("note", "admin.codes.note")}
        </div>
        {invalid && (
          <p id={`${id}-error`} className={styles.fieldError}>
            {t("admin.codes.badNumber")}
          </p>
        )}
        <div className={styles.filterActions}>
          <button type="submit" className="button">
            {t("admin.codes.create")}
          </button>
        </div>
      </form>
      <ReasonDialog
        open={asking}
        title={t("admin.codes.create.title")}
        confirmLabel={t("admin.codes.create")}
        tone="primary"
        onClose={() => setAsking(false)}
        onConfirm={async (reason) => {
          const api = await getApi();
          const made = await unwrap(
            api.POST("/api/admin/codes/batches", {
              body: {
                credits: credits as number,
                count: count as number,
                max_uses: maxUses as number,
                ...(draft.expires_at ? { expires_at: instant(draft.expires_at) } : {}),
                ...(draft.note.trim() ? { note: draft.note.trim() } : {}),
                reason,
              },
            }),
          );
          setDraft(EMPTY);
          onCreated(made);
        }}
      >
        <p>{t("admin.codes.create.body", { count: number(count ?? 0), credits: number(credits ?? 0) })}</p>
      </ReasonDialog>
    </>
  );
}

function Codes({ operator }: { operator: Operator }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { page, go } = useFilters(KEYS);
  const [list, setList] = useState<Schemas["BatchPage"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [made, setMade] = useState<Schemas["BatchWithCodes"] | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      setList(await unwrap(api.GET("/api/admin/codes/batches", { params: { query: { page, page_size: PAGE_SIZE } } })));
    } catch (caught) {
      setError(caught);
    }
  }, [page]);

  useEffect(() => {
    void load();
  }, [load]);

  const pages = list ? Math.max(1, Math.ceil(list.total / PAGE_SIZE)) : 1;

  return (
    <>
      <h1>{t("admin.codes.title")}</h1>
      <div role="status" aria-live="polite">
        {made && (
          <p className="alert alert-success" data-testid="console-notice">
            {t("admin.codes.created", { count: number(made.codes.length) })}
          </p>
        )}
      </div>
      {made && (
        <section className="card" aria-labelledby="new-codes" data-testid="new-batch" data-batch-id={made.batch.id}>
          <h2 id="new-codes">{t("admin.codes.newCodes")}</h2>
          <p>
            <Link href={`/admin/codes/batch/?id=${made.batch.id}`}>{t("admin.codes.open")}</Link>
          </p>
          <ul className={styles.codes} data-testid="new-codes">
            {made.codes.map((code) => (
              <li key={code.id}>{code.code}</li>
            ))}
          </ul>
        </section>
      )}
      <section className="card">
        {operator.role === "admin" ? (
          <CreateBatch
            onCreated={(batch) => {
              setMade(batch);
              if (page === 1) void load();
              else go({}, 1);
            }}
          />
        ) : (
          <>
            <h2>{t("admin.codes.create")}</h2>
            <p className="muted">{t("admin.adminsOnly")}</p>
          </>
        )}
      </section>
      <ErrorBox error={error} />
      {!list && !error && (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      )}
      {list && (
        <>
          <p className="muted" role="status" data-testid="batches-total">
            {t("admin.total", { n: list.total })}
          </p>
          {list.batches.length === 0 ? (
            <p>{t("admin.empty")}</p>
          ) : (
            <TableWrap label={t("admin.codes.caption")}>
              <table data-testid="batches">
                <caption className="visually-hidden">{t("admin.codes.caption")}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("admin.codes.batch")}</th>
                    <th scope="col">{t("admin.codes.credits")}</th>
                    <th scope="col">{t("admin.codes.count")}</th>
                    <th scope="col">{t("admin.codes.maxUses")}</th>
                    <th scope="col">{t("admin.codes.codesUsed")}</th>
                    <th scope="col">{t("admin.codes.uses")}</th>
                    <th scope="col">{t("admin.codes.expires")}</th>
                    <th scope="col">{t("admin.codes.state")}</th>
                    <th scope="col">{t("admin.codes.note")}</th>
                    <th scope="col">{t("admin.codes.createdBy")}</th>
                    <th scope="col">{t("admin.col.created")}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.batches.map((batch) => (
                    <tr key={batch.id} data-batch-id={batch.id}>
                      <td className="mono">
                        <Link href={`/admin/codes/batch/?id=${batch.id}`} title={batch.id}>
                          {shortId(batch.id)}
                        </Link>
                      </td>
                      <td>{number(batch.credits)}</td>
                      <td>{number(batch.count)}</td>
                      <td>{number(batch.max_uses)}</td>
                      <td>{number(batch.codes_used)}</td>
                      <td>{number(batch.uses)}</td>
                      <td className={styles.nowrap}>{batch.expires_at ? date(batch.expires_at) : t("admin.codes.never")}</td>
                      <td className={batch.disabled_at ? styles["state-off"] : styles["state-on"]}>
                        {batch.disabled_at ? t("admin.codes.disabled") : t("admin.codes.active")}
                      </td>
                      <td>{batch.note ?? "—"}</td>
                      <td>{batch.created_by}</td>
                      <td className={styles.nowrap}>{date(batch.created_at)}</td>
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

export default function AdminCodesPage() {
  return (
    <ConsolePage>
      {(operator) => (
        <Suspense fallback={null}>
          <Codes operator={operator} />
        </Suspense>
      )}
    </ConsolePage>
  );
}

"use client";
// The credit balance in detail and every movement of it, with a CSV export.
import Link from "next/link";
import { useCallback, useEffect, useState } from "react";

import { useMoney } from "@/components/account/format";
import { ErrorBox, ErrorWithRetry, Pager } from "@/components/ui";
import { APIError, authFetch, getApi, unwrap, type Schemas } from "@/lib/api/client";
import { RequireAuth } from "@/lib/auth";
import { apiOrigin, loadConfig } from "@/lib/config";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

import styles from "./credits.module.css";

const PAGE_SIZE = 20;
const TASK_KINDS = new Set(["charge", "refund", "reserve", "release"]);

type Credits = Schemas["CreditsResponse"];
type Ledger = Schemas["TransactionsResponse"];
type Entry = Schemas["LedgerEntryOut"];

export default function CreditsPage() {
  return (
    <RequireAuth>
      <CreditsView />
    </RequireAuth>
  );
}

function CreditsView() {
  const { t } = useI18n();
  const { number } = useFormat();
  const [credits, setCredits] = useState<Credits | null>(null);
  const [creditsError, setCreditsError] = useState<unknown>(null);

  const loadCredits = useCallback(async () => {
    setCreditsError(null);
    try {
      const api = await getApi();
      setCredits(await unwrap(api.GET("/api/users/credits")));
    } catch (error) {
      setCreditsError(error);
    }
  }, []);

  useEffect(() => {
    void loadCredits();
  }, [loadCredits]);

  const stats: { label: string; value: number | undefined; hint: string; id: string }[] = [
    { id: "balance", label: t("common.balance"), value: credits?.credits, hint: t("credits.balance.hint") },
    { id: "available", label: t("common.available"), value: credits?.available, hint: t("credits.available.hint") },
    { id: "reserved", label: t("common.reserved"), value: credits?.credits_reserved, hint: t("credits.reserved.hint") },
    { id: "earned", label: t("credits.earned"), value: credits?.total_earned, hint: t("credits.earned.hint") },
    { id: "spent", label: t("credits.spent"), value: credits?.total_spent, hint: t("credits.spent.hint") },
  ];

  return (
    <>
      <h1>{t("credits.title")}</h1>
      <section aria-labelledby="credits-summary">
        <div className={styles.headRow}>
          <h2 id="credits-summary">{t("credits.summary")}</h2>
          <div className={styles.actions}>
            <Link href="/redeem/" className="button secondary">
              {t("redeem.link")}
            </Link>
            <Link href="/buy/" className="button">
              {t("credits.buy")}
            </Link>
          </div>
        </div>
        {creditsError ? (
          <ErrorWithRetry error={creditsError} onRetry={() => void loadCredits()} />
        ) : !credits ? (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        ) : (
          <dl className={styles.stats}>
            {stats.map((stat) => (
              <div key={stat.id} className="card" data-testid={`credits-${stat.id}`}>
                <dt id={`stat-${stat.id}`}>{stat.label}</dt>
                <dd className="stat">{number(stat.value ?? 0)}</dd>
                <dd className="hint">{stat.hint}</dd>
              </div>
            ))}
          </dl>
        )}
      </section>
      <LedgerSection />
    </>
  );
}

function LedgerSection() {
  const { t } = useI18n();
  const { number } = useFormat();
  const [page, setPage] = useState(1);
  const [ledger, setLedger] = useState<Ledger | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);

  const load = useCallback(async (wanted: number) => {
    setLoading(true);
    setError(null);
    try {
      const api = await getApi();
      const data = await unwrap(
        api.GET("/api/users/credits/transactions", { params: { query: { page: wanted, page_size: PAGE_SIZE } } }),
      );
      setLedger(data);
    } catch (failure) {
      setError(failure);
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void load(page);
  }, [load, page]);

  const pages = ledger ? Math.max(1, Math.ceil(ledger.total / ledger.page_size)) : 1;

  return (
    <section aria-labelledby="credits-ledger" aria-busy={loading}>
      <div className={styles.headRow}>
        <div>
          <h2 id="credits-ledger">{t("credits.ledger")}</h2>
          <p className="muted">
            {t("credits.ledger.intro")}
            {ledger ? ` ${t("credits.ledger.count", { n: number(ledger.total) })}` : ""}
          </p>
        </div>
        <CsvExport />
      </div>
      {error ? (
        <ErrorWithRetry error={error} onRetry={() => void load(page)} />
      ) : !ledger ? (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      ) : ledger.transactions.length === 0 ? (
        <p className="muted">{t("credits.ledger.empty")}</p>
      ) : (
        <>
          <div className={`table-wrap ${styles.scroll}`}>
            <table>
              <caption className="visually-hidden">
                {t("credits.ledger.caption", { page: ledger.page, pages })}
              </caption>
              <thead>
                <tr>
                  <th scope="col">{t("credits.col.when")}</th>
                  <th scope="col">{t("credits.col.what")}</th>
                  <th scope="col" className={styles.num}>
                    {t("credits.col.change")}
                  </th>
                  <th scope="col" className={styles.num}>
                    {t("credits.col.balance")}
                  </th>
                  <th scope="col">{t("credits.col.details")}</th>
                </tr>
              </thead>
              <tbody>
                {ledger.transactions.map((entry) => (
                  <LedgerRow key={entry.id} entry={entry} />
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={ledger.page} pages={pages} onPage={setPage} />
        </>
      )}
    </section>
  );
}

function LedgerRow({ entry }: { entry: Entry }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { signed } = useMoney();
  const kindKey = `credits.kind.${entry.kind}` as MessageKey;
  const kind = t(kindKey) === kindKey ? entry.kind : t(kindKey);
  const tone = entry.delta > 0 ? styles.plus : entry.delta < 0 ? styles.minus : styles.zero;

  let link = null;
  if (entry.reference && TASK_KINDS.has(entry.kind)) {
    link = <Link href={`/task/?id=${encodeURIComponent(entry.reference)}`}>{t("credits.viewTask")}</Link>;
  } else if (entry.reference && entry.kind === "purchase") {
    link = <Link href={`/buy/?payment=${encodeURIComponent(entry.reference)}`}>{t("credits.viewPayment")}</Link>;
  }

  return (
    <tr data-kind={entry.kind}>
      <td className={styles.nowrap}>
        <time dateTime={entry.created_at}>{date(entry.created_at)}</time>
      </td>
      <td>
        {kind}
        {entry.note && <span className={styles.note}>{entry.note}</span>}
      </td>
      <td className={styles.num}>
        <span className={tone}>{signed(entry.delta)}</span>
        {entry.reserved_delta > 0 && (
          <span className={styles.sub}>{t("credits.held", { n: number(entry.reserved_delta) })}</span>
        )}
        {entry.reserved_delta < 0 && (
          <span className={styles.sub}>{t("credits.releasedHold", { n: number(-entry.reserved_delta) })}</span>
        )}
      </td>
      <td className={styles.num}>{number(entry.balance_after)}</td>
      <td>{link ?? <span className="muted">—</span>}</td>
    </tr>
  );
}

/** Fetch the CSV with the user's headers (a plain link could not send them) and save it. */
function CsvExport() {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);

  async function download() {
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const config = await loadConfig();
      let response: Response;
      try {
        response = await authFetch(config, new Request(`${apiOrigin(config)}/api/users/credits/transactions.csv`));
      } catch (failure) {
        throw new APIError(0, String(failure));
      }
      if (!response.ok) {
        let detail: unknown;
        try {
          detail = ((await response.json()) as { detail?: unknown }).detail;
        } catch {
          detail = undefined;
        }
        throw new APIError(response.status, detail);
      }
      const blob = await response.blob();
      const name = `vidgate-credits-${new Date().toISOString().slice(0, 10)}.csv`;
      const url = URL.createObjectURL(blob);
      const anchor = document.createElement("a");
      anchor.href = url;
      anchor.download = name;
      document.body.appendChild(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30_000);
      setSaved(name);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div>
      <button
        type="button"
        className="button secondary"
        onClick={() => void download()}
        disabled={busy}
        aria-describedby="csv-hint"
      >
        {busy ? t("credits.exporting") : t("credits.export")}
      </button>
      <p id="csv-hint" className="hint">
        {t("credits.export.hint")}
      </p>
      <div aria-live="polite">{saved && <p className="hint">{t("credits.exported", { name: saved })}</p>}</div>
      <ErrorBox error={error} />
    </div>
  );
}

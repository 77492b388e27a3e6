"use client";
// /admin/: the business overview per UTC day over a date range (the last 30 days at first):
// sign-ups and active users, tasks by status, failure and refund rates, credits sold, granted and
// spent, revenue by gateway and currency, p50/p95 time to a video; and the same as CSV.
import { useCallback, useEffect, useId, useMemo, useState, type FormEvent } from "react";

import { ChartCard, type Row } from "@/components/admin/Charts";
import { ConsolePage } from "@/components/admin/Console";
import styles from "@/components/admin/admin.module.css";
import { ErrorBox } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

type Overview = Schemas["OverviewOut"];

const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"];
/** Each status in the colour its badge has (4.5:1 or more against white). */
const STATUS_COLOURS: Record<string, string> = {
  PENDING: "#57606a",
  RUNNING: "#0b5fd6",
  SUCCEEDED: "#116329",
  FAILED: "#b42318",
  TIMEOUT: "#a1246b",
  CANCELED: "#8a4b00",
};

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function lastDays(n: number): { since: string; until: string } {
  const until = new Date();
  const since = new Date(until.getTime() - (n - 1) * 86_400_000);
  return { since: isoDay(since), until: isoDay(until) };
}

/** Minor units to the currency's own unit (cents to dollars, fen to yuan). */
function major(minor: number, currency: string): number {
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    digits = 2;
  }
  return minor / 10 ** digits;
}

function OverviewPage() {
  const { t, locale } = useI18n();
  const id = useId();
  const tag = locale === "zh" ? "zh-CN" : "en-US";
  const [range, setRange] = useState(() => lastDays(30));
  const [draft, setDraft] = useState(range);
  const [data, setData] = useState<Overview | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [rangeError, setRangeError] = useState(false);
  const [downloading, setDownloading] = useState(false);
  const [csvError, setCsvError] = useState<unknown>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      setData(await unwrap(api.GET("/api/admin/overview", { params: { query: range } })));
    } catch (caught) {
      setError(caught);
    }
  }, [range]);

  useEffect(() => {
    void load();
  }, [load]);

  function apply(event: FormEvent) {
    event.preventDefault();
    const days = (Date.parse(draft.until) - Date.parse(draft.since)) / 86_400_000;
    if (!draft.since || !draft.until || !(days >= 0) || days >= 366) {
      setRangeError(true);
      return;
    }
    setRangeError(false);
    setRange({ ...draft });
  }

  async function downloadCsv() {
    setDownloading(true);
    setCsvError(null);
    try {
      // The token lives with the app, not in a cookie: fetch the file, then save it from a Blob.
      const api = await getApi();
      const { data: blob, response } = await api.GET("/api/admin/overview.csv", {
        params: { query: range },
        parseAs: "blob",
      });
      if (!response.ok || !blob) throw new Error(`HTTP ${response.status}`);
      const disposition = response.headers.get("Content-Disposition") ?? "";
      const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? `vidgate-${range.since}-${range.until}.csv`;
      const url = URL.createObjectURL(blob as Blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (caught) {
      setCsvError(caught);
    } finally {
      setDownloading(false);
    }
  }

  const number = useCallback((value: number) => value.toLocaleString(tag), [tag]);
  const percent = useCallback(
    (value: number) => (value * 100).toLocaleString(tag, { maximumFractionDigits: 1 }) + "%",
    [tag],
  );
  const seconds = useCallback((value: number) => value.toLocaleString(tag, { maximumFractionDigits: 1 }), [tag]);

  const charts = useMemo(() => {
    if (!data) return null;
    const days = data.days;
    const revenueKeys = Array.from(new Set(days.flatMap((day) => Object.keys(day.revenue_minor)))).sort();
    const rows: Row[] = days.map((day) => {
      const row: Row = {
        day: day.day,
        signups: day.signups,
        active_users: day.active_users,
        failure_rate: day.failure_rate,
        refund_rate: day.refund_rate,
        credits_sold: day.credits_sold,
        credits_granted: day.credits_granted,
        credits_spent: day.credits_spent,
        p50: day.duration_p50_seconds ?? null,
        p95: day.duration_p95_seconds ?? null,
      };
      for (const status of STATUSES) row[`status_${status}`] = day.tasks_by_status[status] ?? 0;
      for (const key of revenueKeys) {
        const currency = key.split(":")[1] ?? "";
        row[`revenue_${key}`] = major(day.revenue_minor[key] ?? 0, currency);
      }
      return row;
    });
    const totals = {
      signups: days.reduce((sum, day) => sum + day.signups, 0),
      tasks: days.reduce((sum, day) => sum + day.tasks, 0),
      sold: days.reduce((sum, day) => sum + day.credits_sold, 0),
      spent: days.reduce((sum, day) => sum + day.credits_spent, 0),
    };
    const revenue = revenueKeys.map((key) => {
      const [gateway, currency] = key.split(":");
      const minor = days.reduce((sum, day) => sum + (day.revenue_minor[key] ?? 0), 0);
      return { key, gateway, currency, amount: major(minor, currency ?? "") };
    });
    return { rows, totals, revenue, revenueKeys };
  }, [data]);

  const money = (amount: number, currency: string) => {
    try {
      return new Intl.NumberFormat(tag, { style: "currency", currency }).format(amount);
    } catch {
      return `${amount.toLocaleString(tag)} ${currency}`;
    }
  };

  return (
    <>
      <h1>{t("admin.overview.title")}</h1>
      <form onSubmit={apply} className={styles.filters} noValidate>
        <div className="field">
          <label htmlFor={`${id}-since`}>{t("admin.overview.since")}</label>
          <input
            id={`${id}-since`}
            type="date"
            className={styles.dateInput}
            value={draft.since}
            onChange={(event) => setDraft({ ...draft, since: event.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-until`}>{t("admin.overview.until")}</label>
          <input
            id={`${id}-until`}
            type="date"
            className={styles.dateInput}
            value={draft.until}
            onChange={(event) => setDraft({ ...draft, until: event.target.value })}
          />
        </div>
        <div className={styles.filterActions}>
          <button type="submit" className="button">
            {t("admin.overview.apply")}
          </button>
          <button type="button" className="button secondary" disabled={downloading} onClick={() => void downloadCsv()}>
            {downloading ? t("admin.overview.csvBusy") : t("admin.overview.csv")}
          </button>
        </div>
      </form>
      {rangeError && (
        <div className="alert alert-error" role="alert">
          {t("admin.overview.badRange")}
        </div>
      )}
      <ErrorBox error={csvError} />
      <ErrorBox error={error} />
      {!data && !error && (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      )}
      {data && charts && (
        <>
          <p className="muted" data-testid="overview-range">
            {t("admin.overview.range", { since: data.since, until: data.until })}
          </p>
          <h2 className="visually-hidden">{t("admin.overview.totals")}</h2>
          <dl className={styles.figures}>
            <div className={styles.figure}>
              <dt>{t("admin.overview.signups")}</dt>
              <dd data-testid="total-signups">{number(charts.totals.signups)}</dd>
            </div>
            <div className={styles.figure}>
              <dt>{t("admin.overview.tasks")}</dt>
              <dd data-testid="total-tasks">{number(charts.totals.tasks)}</dd>
            </div>
            <div className={styles.figure}>
              <dt>{t("admin.overview.sold")}</dt>
              <dd>{number(charts.totals.sold)}</dd>
            </div>
            <div className={styles.figure}>
              <dt>{t("admin.overview.spent")}</dt>
              <dd>{number(charts.totals.spent)}</dd>
            </div>
          </dl>
          <div className={styles.charts}>
            <ChartCard
              integer
              testId="chart-users"
              title={t("admin.overview.users")}
              kind="line"
              rows={charts.rows}
              format={number}
              series={[
                { key: "signups", label: t("admin.overview.signups") },
                { key: "active_users", label: t("admin.overview.active") },
              ]}
            />
            <ChartCard
              integer
              testId="chart-status"
              title={t("admin.overview.byStatus")}
              kind="bar"
              stacked
              rows={charts.rows}
              format={number}
              series={STATUSES.map((status) => ({
                key: `status_${status}`,
                label: t(`status.${status}` as MessageKey),
                colour: STATUS_COLOURS[status],
              }))}
            />
            <ChartCard
              domain={[0, 1]}
              testId="chart-rates"
              title={t("admin.overview.rates")}
              kind="line"
              rows={charts.rows}
              format={percent}
              series={[
                { key: "failure_rate", label: t("admin.overview.failureRate") },
                { key: "refund_rate", label: t("admin.overview.refundRate") },
              ]}
            />
            <ChartCard
              integer
              testId="chart-credits"
              title={t("admin.overview.credits")}
              kind="bar"
              rows={charts.rows}
              format={number}
              series={[
                { key: "credits_sold", label: t("admin.overview.sold") },
                { key: "credits_granted", label: t("admin.overview.granted") },
                { key: "credits_spent", label: t("admin.overview.spent") },
              ]}
            />
            <ChartCard
              testId="chart-revenue"
              title={t("admin.overview.revenue")}
              kind="bar"
              rows={charts.rows}
              format={number}
              series={charts.revenueKeys.map((key) => ({ key: `revenue_${key}`, label: key.replace(":", " · ") }))}
            />
            <ChartCard
              testId="chart-duration"
              title={t("admin.overview.duration")}
              kind="bar"
              rows={charts.rows}
              format={seconds}
              series={[
                { key: "p50", label: t("admin.overview.p50") },
                { key: "p95", label: t("admin.overview.p95") },
              ]}
            />
          </div>
          <section className="card" aria-labelledby="revenue-totals">
            <h2 id="revenue-totals">{t("admin.overview.revenue")}</h2>
            {charts.revenue.length === 0 ? (
              <p className="muted">{t("admin.overview.revenueNone")}</p>
            ) : (
              <ul data-testid="revenue-totals">
                {charts.revenue.map((item) => (
                  <li key={item.key}>
                    {item.gateway}: {money(item.amount, item.currency ?? "")}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </>
      )}
    </>
  );
}

export default function AdminOverviewPage() {
  return <ConsolePage>{() => <OverviewPage />}</ConsolePage>;
}

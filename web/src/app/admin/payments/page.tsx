"use client";
// /admin/payments/: every user's orders, newest first, filtered by status, gateway, user and time;
// the filters live in the address.
import Link from "next/link";
import { Suspense, useId } from "react";

import { useMoney } from "@/components/account/format";
import { ConsolePage, minorDigits, paymentStatusLabel, providerLabel, shortId, TableWrap } from "@/components/admin/Console";
import styles from "@/components/admin/admin.module.css";
import { useFilteredList } from "@/components/admin/useFilters";
import { ErrorBox, Pager } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import type { paths } from "@/lib/api/schema";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

const PAGE_SIZE = 20;
const STATUSES = ["pending", "completed", "failed", "expired", "partially_refunded", "refunded", "disputed"] as const;
const PROVIDERS = ["wechat", "stripe"] as const;
const KEYS = ["status", "provider", "user_id", "since", "until"] as const;
type Key = (typeof KEYS)[number];
type Query = NonNullable<paths["/api/admin/payments"]["get"]["parameters"]["query"]>;

function Payments() {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { money } = useMoney();
  const id = useId();
  const { page, go, draft, setDraft, list, error, submit, pages } = useFilteredList(
    KEYS,
    PAGE_SIZE,
    async (query): Promise<Schemas["AdminPaymentPage"]> =>
      unwrap((await getApi()).GET("/api/admin/payments", { params: { query: query as Query } })),
  );

  const field = (key: Key, label: MessageKey, type = "text") => (
    <div className="field">
      <label htmlFor={`${id}-${key}`}>{t(label)}</label>
      <input
        id={`${id}-${key}`}
        type={type}
        className={styles.dateInput}
        value={draft[key]}
        onChange={(event) => setDraft({ ...draft, [key]: event.target.value })}
      />
    </div>
  );

  return (
    <>
      <h1>{t("admin.payments.title")}</h1>
      <form onSubmit={submit} className={styles.filters} aria-label={t("admin.filter")}>
        <div className="field">
          <label htmlFor={`${id}-status`}>{t("admin.payments.status")}</label>
          <select id={`${id}-status`} value={draft.status} onChange={(event) => setDraft({ ...draft, status: event.target.value })}>
            <option value="">{t("admin.payments.any")}</option>
            {STATUSES.map((value) => (
              <option key={value} value={value}>
                {paymentStatusLabel(t, value)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-provider`}>{t("admin.payments.provider")}</label>
          <select id={`${id}-provider`} value={draft.provider} onChange={(event) => setDraft({ ...draft, provider: event.target.value })}>
            <option value="">{t("admin.payments.any")}</option>
            {PROVIDERS.map((value) => (
              <option key={value} value={value}>
                {providerLabel(t, value)}
              </option>
            ))}
          </select>
        </div>
        {field("user_id", "admin.payments.userId")}
        {field("since", "admin.payments.since", "datetime-local")}
        {field("until", "admin.payments.until", "datetime-local")}
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
          <p className="muted" role="status" data-testid="payments-total">
            {t("admin.total", { n: list.total })}
          </p>
          {list.payments.length === 0 ? (
            <p>{t("admin.empty")}</p>
          ) : (
            <TableWrap label={t("admin.payments.caption")}>
              <table data-testid="payments">
                <caption className="visually-hidden">{t("admin.payments.caption")}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t("admin.col.payment")}</th>
                    <th scope="col">{t("admin.col.user")}</th>
                    <th scope="col">{t("admin.payments.provider")}</th>
                    <th scope="col">{t("admin.payments.status")}</th>
                    <th scope="col">{t("admin.payments.amount")}</th>
                    <th scope="col">{t("admin.payments.credits")}</th>
                    <th scope="col">{t("admin.payments.created")}</th>
                    <th scope="col">{t("admin.payments.paid")}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.payments.map((payment) => (
                    <tr key={payment.payment_id} data-payment-id={payment.payment_id}>
                      <td className="mono">
                        <Link href={`/admin/payment/?id=${payment.payment_id}`} title={payment.payment_id}>
                          {shortId(payment.payment_id)}
                        </Link>
                      </td>
                      <td className="mono">
                        <Link href={`/admin/user/?id=${payment.user_id}`} title={payment.user_id}>
                          {shortId(payment.user_id)}
                        </Link>
                      </td>
                      <td>{providerLabel(t, payment.provider)}</td>
                      <td data-testid="payment-row-status">{paymentStatusLabel(t, payment.status)}</td>
                      <td className={styles.nowrap}>
                        {money(payment.amount_minor / 10 ** minorDigits(payment.currency), payment.currency)}
                      </td>
                      <td>{number(payment.credits)}</td>
                      <td className={styles.nowrap}>{date(payment.created_at)}</td>
                      <td className={styles.nowrap}>{date(payment.paid_at)}</td>
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

export default function AdminPaymentsPage() {
  return (
    <ConsolePage>
      {() => (
        <Suspense fallback={null}>
          <Payments />
        </Suspense>
      )}
    </ConsolePage>
  );
}

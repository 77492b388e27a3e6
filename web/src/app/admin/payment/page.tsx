"use client";
// /admin/payment/?id=<payment_id>: one order as operators see it: the gateway's notifications about
// it, its refunds and disputes (with the credits each took back and any shortfall), what remains
// refundable, and for admins a refund (part or all, with a reason) and a retry of a refund the
// gateway left unanswered.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useId, useState, type FormEvent } from "react";

import { ConfirmDialog } from "@/components/account/ConfirmDialog";
import { useMoney } from "@/components/account/format";
import {
  ConsolePage,
  minorDigits,
  paymentStatusLabel,
  providerLabel,
  refundStatusLabel,
  TableWrap,
  useOperatorError,
} from "@/components/admin/Console";
import { ReasonDialog } from "@/components/admin/ReasonDialog";
import styles from "@/components/admin/admin.module.css";
import { compactJson } from "@/components/admin/labels";
import { ErrorWithRetry } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import type { Operator } from "@/lib/operator";

type Detail = Schemas["AdminPaymentDetail"];
type Refund = Schemas["RefundView"];

function PaymentDetail({ paymentId, operator }: { paymentId: string; operator: Operator }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { money } = useMoney();
  const id = useId();
  const isAdmin = operator.role === "admin";
  const [detail, setDetail] = useState<Detail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [amount, setAmount] = useState("");
  const [amountError, setAmountError] = useState("");
  const [refunding, setRefunding] = useState<number | null | undefined>(undefined);
  const [retrying, setRetrying] = useState<Refund | null>(null);
  const [retryBusy, setRetryBusy] = useState(false);
  const [retryError, setRetryError] = useState<unknown>(null);
  const translate = useOperatorError();

  const load = useCallback(async () => {
    try {
      const api = await getApi();
      setDetail(await unwrap(api.GET("/api/admin/payments/{payment_id}", { params: { path: { payment_id: paymentId } } })));
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [paymentId]);

  useEffect(() => {
    void load();
  }, [load]);

  if (!detail) {
    return error ? (
      <>
        <h1>{t("admin.payments.title")}</h1>
        <ErrorWithRetry error={translate(error)} onRetry={() => void load()} />
        <p>
          <Link href="/admin/payments/">{t("admin.payment.back")}</Link>
        </p>
      </>
    ) : (
      <p className="muted" role="status">
        {t("common.loading")}
      </p>
    );
  }

  const digits = minorDigits(detail.currency);
  const major = (minor: number) => money(minor / 10 ** digits, detail.currency);
  const max = major(detail.refundable_minor);
  const canRefund = detail.refundable_minor > 0 && (detail.status === "completed" || detail.status === "partially_refunded");

  function startRefund(event: FormEvent) {
    event.preventDefault();
    if (!detail) return;
    const text = amount.trim().replace(",", ".");
    if (!text) {
      setAmountError("");
      setRefunding(null);
      return;
    }
    const value = Number(text);
    const minor = Math.round(value * 10 ** digits);
    if (!Number.isFinite(value) || minor <= 0 || minor > detail.refundable_minor) {
      setAmountError(t("admin.payment.refund.badAmount", { max }));
      return;
    }
    setAmountError("");
    setRefunding(minor);
  }

  async function retry() {
    if (!retrying || !detail) return;
    setRetryBusy(true);
    setRetryError(null);
    try {
      const api = await getApi();
      const refund = await unwrap(
        api.POST("/api/admin/payments/{payment_id}/refunds/{refund_id}/retry", {
          params: { path: { payment_id: detail.payment_id, refund_id: retrying.refund_id } },
        }),
      );
      setNotice(refundNotice(refund));
      setRetrying(null);
    } catch (caught) {
      setRetryError(translate(caught));
    } finally {
      setRetryBusy(false);
      void load();
    }
  }

  function refundNotice(refund: Refund): string {
    const text = t("admin.payment.refunded", {
      status: refundStatusLabel(t, refund.status),
      amount: major(refund.amount_minor),
      taken: number(refund.credits_taken),
    });
    return refund.credits_shortfall > 0
      ? `${text} ${t("admin.payment.shortfallNotice", { n: number(refund.credits_shortfall) })}`
      : text;
  }

  return (
    <>
      <p>
        <Link href="/admin/payments/">{t("admin.payment.back")}</Link>
      </p>
      <h1>{t("admin.payment.title", { id: detail.payment_id.slice(0, 8) })}</h1>
      <div role="status" aria-live="polite">
        {notice && (
          <p className="alert alert-success" data-testid="console-notice">
            {notice}
          </p>
        )}
      </div>

      <div className={styles.panels}>
        <section className="card" aria-labelledby="payment-facts">
          <h2 id="payment-facts">{t("admin.payment.order")}</h2>
          <dl className={styles.facts} data-testid="admin-payment-facts">
            <dt>{t("admin.user.id")}</dt>
            <dd className="mono">{detail.payment_id}</dd>
            <dt>{t("admin.payment.user")}</dt>
            <dd className="mono">
              <Link href={`/admin/user/?id=${detail.user_id}`}>{detail.user_id}</Link>
            </dd>
            <dt>{t("admin.payments.provider")}</dt>
            <dd>{providerLabel(t, detail.provider)}</dd>
            <dt>{t("admin.payments.status")}</dt>
            <dd data-testid="payment-status">{paymentStatusLabel(t, detail.status)}</dd>
            <dt>{t("admin.payments.amount")}</dt>
            <dd data-testid="payment-amount">{major(detail.amount_minor)}</dd>
            <dt>{t("admin.payments.credits")}</dt>
            <dd>{number(detail.credits)}</dd>
            <dt>{t("admin.payment.refundable")}</dt>
            <dd data-testid="payment-refundable">{max}</dd>
            {detail.scene && (
              <>
                <dt>{t("admin.payment.scene")}</dt>
                <dd>{detail.scene}</dd>
              </>
            )}
            <dt>{t("admin.payment.providerRef")}</dt>
            <dd className="mono">{detail.provider_ref ?? "—"}</dd>
            <dt>{t("admin.payment.transaction")}</dt>
            <dd className="mono">{detail.transaction_id ?? "—"}</dd>
            <dt>{t("admin.payments.created")}</dt>
            <dd>{date(detail.created_at)}</dd>
            <dt>{t("admin.payment.expires")}</dt>
            <dd>{date(detail.expires_at)}</dd>
            <dt>{t("admin.payments.paid")}</dt>
            <dd>{date(detail.paid_at)}</dd>
          </dl>
          <p>
            <Link href={`/admin/payments/?user_id=${detail.user_id}`}>{t("admin.payment.userPayments")}</Link>
          </p>
        </section>
        <section className="card" aria-labelledby="payment-refund">
          <h2 id="payment-refund">{t("admin.payment.refund")}</h2>
          {!isAdmin ? (
            <p className="muted">{t("admin.adminsOnly")}</p>
          ) : canRefund ? (
            <form onSubmit={startRefund} noValidate>
              <div className="field">
                <label htmlFor={`${id}-amount`}>{t("admin.payment.refund.amount", { currency: detail.currency })}</label>
                <p id={`${id}-amount-hint`} className="hint">
                  {t("admin.payment.refund.amountHint", { max })}
                </p>
                <input
                  id={`${id}-amount`}
                  inputMode="decimal"
                  value={amount}
                  aria-invalid={amountError ? true : undefined}
                  aria-describedby={amountError ? `${id}-amount-hint ${id}-amount-error` : `${id}-amount-hint`}
                  onChange={(event) => setAmount(event.target.value)}
                />
                {amountError && (
                  <p id={`${id}-amount-error`} className={styles.fieldError}>
                    {amountError}
                  </p>
                )}
              </div>
              <button type="submit" className="button danger">
                {t("admin.payment.refund")}
              </button>
            </form>
          ) : (
            <p className="muted">{t("admin.payment.refundable")}: {max}</p>
          )}
        </section>
      </div>

      <h2>{t("admin.payment.refunds")}</h2>
      {detail.refunds.length === 0 ? (
        <p className="muted">{t("admin.payment.noRefunds")}</p>
      ) : (
        <TableWrap label={t("admin.payment.refunds")}>
          <table data-testid="payment-refunds">
            <thead>
              <tr>
                <th scope="col">{t("admin.payment.kind")}</th>
                <th scope="col">{t("admin.payment.refundStatus")}</th>
                <th scope="col">{t("admin.payments.amount")}</th>
                <th scope="col">{t("admin.payment.taken")}</th>
                <th scope="col">{t("admin.payment.shortfall")}</th>
                <th scope="col">{t("admin.payment.gatewayId")}</th>
                <th scope="col">{t("admin.payment.actor")}</th>
                <th scope="col">{t("admin.payment.reason")}</th>
                <th scope="col">{t("admin.payments.created")}</th>
                {isAdmin && <th scope="col"><span className="visually-hidden">{t("admin.payment.retry")}</span></th>}
              </tr>
            </thead>
            <tbody>
              {detail.refunds.map((refund) => (
                <tr key={refund.refund_id} data-refund-id={refund.refund_id} data-status={refund.status}>
                  <td>{t(`admin.payment.kind.${refund.kind}` as MessageKey)}</td>
                  <td>{refundStatusLabel(t, refund.status)}</td>
                  <td className={styles.nowrap}>{major(refund.amount_minor)}</td>
                  <td data-testid="refund-taken">{number(refund.credits_taken)}</td>
                  <td data-testid="refund-shortfall">{number(refund.credits_shortfall)}</td>
                  <td className="mono">{refund.gateway_id ?? "—"}</td>
                  <td>{refund.actor}</td>
                  <td>{refund.reason ?? "—"}</td>
                  <td className={styles.nowrap}>{date(refund.created_at)}</td>
                  {isAdmin && (
                    <td>
                      {refund.kind === "refund" && refund.status === "pending" && !refund.gateway_id && (
                        <button type="button" className="button secondary" onClick={() => {
                            setRetryError(null);
                            setRetrying(refund);
                          }}>
                          {t("admin.payment.retry")}
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <h2>{t("admin.payment.events")}</h2>
      {detail.events.length === 0 ? (
        <p className="muted">{t("admin.payment.noEvents")}</p>
      ) : (
        <TableWrap label={t("admin.payment.events")}>
          <table data-testid="payment-events">
            <thead>
              <tr>
                <th scope="col">{t("admin.payment.event")}</th>
                <th scope="col">{t("admin.payment.state")}</th>
                <th scope="col">{t("admin.payment.outcome")}</th>
                <th scope="col">{t("admin.payment.received")}</th>
              </tr>
            </thead>
            <tbody>
              {detail.events.map((event) => (
                <tr key={event.id}>
                  <td className="mono">
                    <details>
                      <summary>{event.event_id}</summary>
                      <pre className={styles.json}>{compactJson(event.payload)}</pre>
                    </details>
                  </td>
                  <td>{event.state ?? "—"}</td>
                  <td>{event.outcome}</td>
                  <td className={styles.nowrap}>{date(event.received_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <ReasonDialog
        open={refunding !== undefined}
        title={t("admin.payment.refund.title")}
        confirmLabel={t("admin.payment.refund")}
        onClose={() => setRefunding(undefined)}
        onConfirm={async (reason) => {
          const api = await getApi();
          try {
            const refund = await unwrap(
              api.POST("/api/admin/payments/{payment_id}/refund", {
                params: { path: { payment_id: detail.payment_id } },
                body: refunding ? { amount_minor: refunding, reason } : { reason },
              }),
            );
            setNotice(refundNotice(refund));
            setAmount("");
          } finally {
            // A refund left pending (no answer from the gateway) shows with its Retry.
            void load();
          }
        }}
      >
        <p>
          <strong data-testid="refund-confirm-amount">{refunding ? major(refunding) : max}</strong>
        </p>
        <p>{t("admin.payment.refund.body", { provider: providerLabel(t, detail.provider) })}</p>
      </ReasonDialog>

      <ConfirmDialog
        open={retrying !== null}
        title={t("admin.payment.retry.title")}
        confirmLabel={t("admin.payment.retry")}
        busyLabel={t("admin.working")}
        busy={retryBusy}
        tone="primary"
        error={retryError}
        onCancel={() => setRetrying(null)}
        onConfirm={() => void retry()}
      >
        <p>{t("admin.payment.retry.body")}</p>
      </ConfirmDialog>
    </>
  );
}

function PaymentFromQuery({ operator }: { operator: Operator }) {
  const { t } = useI18n();
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <>
        <h1>{t("admin.payments.title")}</h1>
        <p>{t("admin.payment.missing")}</p>
        <p>
          <Link href="/admin/payments/">{t("admin.payment.back")}</Link>
        </p>
      </>
    );
  }
  return <PaymentDetail key={id} paymentId={id} operator={operator} />;
}

export default function AdminPaymentPage() {
  return (
    <ConsolePage>
      {(operator) => (
        <Suspense fallback={null}>
          <PaymentFromQuery operator={operator} />
        </Suspense>
      )}
    </ConsolePage>
  );
}

"use client";
// Following one credit-pack order until it is paid, failed or expired: the WeChat Pay QR code and
// its countdown, the way back to Stripe, and what happened in the end.
import Link from "next/link";
import QRCode from "qrcode";
import { useEffect, useRef, useState } from "react";

import { useMoney } from "@/components/account/format";
import { ErrorBox } from "@/components/ui";
import { APIError, getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useAuth } from "@/lib/auth";
import { apiOrigin, type WebConfig } from "@/lib/config";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

import styles from "./payments.module.css";

export type Payment = Schemas["PaymentView"];
export type PaymentStatus = Payment["status"];

const POLL_MS = 2000;
const BADGE: Record<PaymentStatus, string> = {
  pending: "badge-pending",
  completed: "badge-succeeded",
  failed: "badge-failed",
  expired: "badge-canceled",
  partially_refunded: "badge-canceled",
  refunded: "badge-canceled",
  disputed: "badge-failed",
};

export function PaymentStatusBadge({ status }: { status: PaymentStatus }) {
  const { t } = useI18n();
  return (
    <span className={`badge ${BADGE[status] ?? ""}`} data-status={status}>
      {t(`buy.status.${status}` as MessageKey)}
    </span>
  );
}

export function methodLabel(t: (key: MessageKey) => string, provider: string): string {
  const key = `buy.method.${provider}` as MessageKey;
  const text = t(key);
  return text === key ? provider : text;
}

/** Where to approve a WeChat order on vidgate's emulator (development only). The emulator's
 * code_url is `weixin://wxpay/bizpayurl?pr=<token>`, its pay page `/_emulator/wechatpay/pay/<token>`
 * on the API's origin (README, "Buying credits"). */
export function emulatedWeChatPage(codeUrl: string, config: WebConfig): string | null {
  if (/^https?:\/\//i.test(codeUrl)) return codeUrl;
  let token: string | null = null;
  try {
    token = new URL(codeUrl).searchParams.get("pr");
  } catch {
    token = null;
  }
  if (!token) return null;
  const origin = apiOrigin(config) || window.location.origin;
  return `${origin}/_emulator/wechatpay/pay/${encodeURIComponent(token)}`;
}

function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [active]);
  return now;
}

function clock(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const mm = String(minutes).padStart(hours ? 2 : 1, "0");
  const ss = String(seconds).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

function QrCode({ text, alt }: { text: string; alt: string }) {
  const { t } = useI18n();
  const [src, setSrc] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    QRCode.toDataURL(text, { errorCorrectionLevel: "M", margin: 2, width: 240 })
      .then((url) => current && (setSrc(url), setError(null)))
      .catch((failure: unknown) => current && setError(String(failure)));
    return () => {
      current = false;
    };
  }, [text]);
  if (error) return <p className="alert alert-error">{t("buy.wechat.qrFailed", { detail: error })}</p>;
  if (!src) return <div className={styles.qrPlaceholder} aria-hidden="true" />;
  // eslint-disable-next-line @next/next/no-img-element
  return <img className={styles.qr} src={src} alt={alt} width={240} height={240} />;
}

/**
 * Shows the order and asks for it every 2 s while it is pending. Calls `onSettled` once it leaves
 * `pending` (and reloads the signed-in user, whose balance the header shows).
 */
export function PaymentFollower({
  paymentId,
  config,
  onSettled,
  onRestart,
}: {
  paymentId: string;
  config: WebConfig;
  onSettled: (payment: Payment) => void;
  onRestart: () => void;
}) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { money } = useMoney();
  const { reload } = useAuth();
  const [payment, setPayment] = useState<Payment | null>(null);
  const [error, setError] = useState<unknown>(null);
  const settledRef = useRef<string | null>(null);
  const onSettledRef = useRef(onSettled);
  useEffect(() => {
    onSettledRef.current = onSettled;
  }, [onSettled]);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setPayment(null);
    setError(null);
    const tick = async () => {
      try {
        const api = await getApi();
        const found = await unwrap(api.GET("/api/payments/{payment_id}", { params: { path: { payment_id: paymentId } } }));
        if (stopped) return;
        setPayment(found);
        setError(null);
        if (found.status === "pending") {
          timer = setTimeout(tick, POLL_MS);
        } else if (settledRef.current !== found.payment_id) {
          settledRef.current = found.payment_id;
          void reload();
          onSettledRef.current(found);
        }
      } catch (failure) {
        if (stopped) return;
        setError(failure);
        // Not found (or not ours) stays so; anything else may pass: keep asking, more slowly.
        const final = failure instanceof APIError && [401, 403, 404, 422].includes(failure.status);
        if (!final) timer = setTimeout(tick, POLL_MS * 3);
      }
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
    // reload is stable enough; following must not restart when it changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [paymentId]);

  const pending = payment?.status === "pending";
  const now = useNow(pending);

  if (!payment) {
    return (
      <section className="card" aria-labelledby="order-heading">
        <h2 id="order-heading">{t("buy.order.loading")}</h2>
        {error ? (
          <>
            <ErrorBox error={error} />
            <button type="button" className="button secondary" onClick={onRestart}>
              {t("buy.again")}
            </button>
          </>
        ) : (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        )}
      </section>
    );
  }

  const amount = money(payment.amount, payment.currency);
  const remaining = new Date(payment.expires_at).getTime() - now;
  const lapsed = pending && remaining <= 0;
  const tone =
    payment.status === "completed" ? "success" : payment.status === "pending" ? (lapsed ? "warning" : "info") : "error";
  let message: string;
  if (payment.status === "pending") {
    message = lapsed ? t("buy.follow.lapsed") : t(`buy.follow.pending.${payment.provider}` as MessageKey);
  } else if (payment.status === "completed") {
    message = t("buy.follow.completed", { credits: number(payment.credits) });
  } else {
    message = t(`buy.follow.${payment.status}` as MessageKey);
  }
  const devPage =
    config.environment === "development" && payment.code_url ? emulatedWeChatPage(payment.code_url, config) : null;

  return (
    <section className="card" aria-labelledby="order-heading" data-payment-status={payment.status}>
      <div className={styles.orderHead}>
        <h2 id="order-heading">
          {t("buy.order.heading", { credits: number(payment.credits), amount })}
        </h2>
        <PaymentStatusBadge status={payment.status} />
      </div>

      <div className={`alert alert-${tone}`} role="status" aria-live="polite" data-testid="payment-status">
        {message}
      </div>
      <ErrorBox error={error} />

      {pending && !lapsed && (
        <p className={styles.countdown}>
          {t("buy.countdown", { time: clock(remaining) })}
        </p>
      )}

      {pending && payment.code_url && (
        <div className={styles.qrBlock}>
          <QrCode text={payment.code_url} alt={t("buy.wechat.qrAlt", { amount })} />
          <div>
            <p className={styles.amount}>{amount}</p>
            <p>{t("buy.wechat.scan")}</p>
            {devPage && (
              <div className="alert alert-warning">
                <p className={styles.devHint}>{t("buy.wechat.devHint")}</p>
                <a href={devPage} target="_blank" rel="noopener noreferrer">
                  {t("buy.wechat.dev")}
                </a>
              </div>
            )}
          </div>
        </div>
      )}

      {pending && payment.checkout_url && (
        <p>
          <a className="button" href={payment.checkout_url}>
            {t("buy.stripe.continue")}
          </a>
        </p>
      )}

      <dl className={styles.details}>
        <div>
          <dt>{t("buy.order.amount")}</dt>
          <dd>{amount}</dd>
        </div>
        <div>
          <dt>{t("buy.order.credits")}</dt>
          <dd>{number(payment.credits)}</dd>
        </div>
        <div>
          <dt>{t("buy.order.method")}</dt>
          <dd>{methodLabel(t, payment.provider)}</dd>
        </div>
        <div>
          <dt>{t("buy.order.created")}</dt>
          <dd>{date(payment.created_at)}</dd>
        </div>
        {payment.paid_at && (
          <div>
            <dt>{t("buy.order.paid")}</dt>
            <dd>{date(payment.paid_at)}</dd>
          </div>
        )}
        <div>
          <dt>{t("buy.order.id")}</dt>
          <dd className="mono">{payment.payment_id}</dd>
        </div>
      </dl>

      <div className="row">
        {payment.status === "completed" ? (
          <>
            <Link href="/credits/" className="button">
              {t("buy.toCredits")}
            </Link>
            <button type="button" className="button secondary" onClick={onRestart}>
              {t("buy.more")}
            </button>
          </>
        ) : payment.status === "pending" ? (
          <button type="button" className="button secondary" onClick={onRestart}>
            {t("buy.another")}
          </button>
        ) : (
          <button type="button" className="button" onClick={onRestart}>
            {t("buy.again")}
          </button>
        )}
      </div>
    </section>
  );
}

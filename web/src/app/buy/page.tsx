"use client";
// Buying a credit pack: pick a pack and a payment method, then pay by WeChat Pay QR code or on
// Stripe Checkout; `?payment=<id>` follows one order until it is paid, failed or expired.
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useMemo, useState, type FormEvent } from "react";

import { useMoney } from "@/components/account/format";
import { methodLabel, PaymentFollower, PaymentStatusBadge, type Payment } from "@/components/account/payments";
import { ErrorBox, ErrorWithRetry, Pager } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { RequireAuth } from "@/lib/auth";
import { loadConfig, type WebConfig } from "@/lib/config";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

import styles from "./buy.module.css";

type Pack = Schemas["PackView"];
type Method = "wechat" | "stripe";

/** The Stripe order being paid, kept across the trip to Stripe and back (same tab). */
const RECENT_PAGE_SIZE = 10;

export default function BuyPage() {
  const { t } = useI18n();
  return (
    <RequireAuth>
      <Suspense
        fallback={
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        }
      >
        <Buy />
      </Suspense>
    </RequireAuth>
  );
}

function Buy() {
  const { t } = useI18n();
  const router = useRouter();
  const params = useSearchParams();
  const paymentId = params.get("payment");
  const [config, setConfig] = useState<WebConfig | null>(null);
  const [configError, setConfigError] = useState<unknown>(null);
  const [recentVersion, setRecentVersion] = useState(0);

  useEffect(() => {
    loadConfig().then(setConfig, setConfigError);
  }, []);

  const refreshRecent = useCallback(() => setRecentVersion((n) => n + 1), []);
  const follow = useCallback((id: string) => router.replace(`/buy/?payment=${encodeURIComponent(id)}`), [router]);
  const restart = useCallback(() => {
    router.replace("/buy/");
  }, [router]);


  return (
    <>
      <h1>{t("buy.title")}</h1>
      <p>{t("buy.intro")}</p>
      {configError ? <ErrorBox error={configError} /> : null}
      {!config ? (
        !configError && (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        )
      ) : paymentId ? (
        <PaymentFollower paymentId={paymentId} config={config} onSettled={refreshRecent} onRestart={restart} />
      ) : (
        <PackForm config={config} onWeChatOrder={follow} onFailedOrder={refreshRecent} />
      )}
      <RecentPayments version={recentVersion} current={paymentId} />
    </>
  );
}

function PackForm({
  config,
  onWeChatOrder,
  onFailedOrder,
}: {
  config: WebConfig;
  onWeChatOrder: (id: string) => void;
  onFailedOrder: () => void;
}) {
  const { t } = useI18n();
  const { number } = useFormat();
  const { money, unitPrice } = useMoney();
  const [packs, setPacks] = useState<Pack[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [credits, setCredits] = useState<number | null>(null);
  const [method, setMethod] = useState<Method | null>(null);
  const [currency, setCurrency] = useState<string | null>(null);
  const [busy, setBusy] = useState<"creating" | "redirecting" | null>(null);
  const [error, setError] = useState<unknown>(null);

  const configured = useMemo(
    () => (config.payment_methods.filter((m) => m === "wechat" || m === "stripe") as Method[]),
    [config.payment_methods],
  );
  const methodsFor = useCallback(
    (pack: Pack): Method[] => configured.filter((m) => pack.providers.includes(m) && currenciesFor(pack, m).length > 0),
    [configured],
  );

  const load = useCallback(async () => {
    setLoadError(null);
    try {
      const api = await getApi();
      const list = await unwrap(api.GET("/api/payments/packages"));
      setPacks(list.packages);
    } catch (failure) {
      setLoadError(failure);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  // A sensible first choice: the first pack on sale, its first method and currency.
  useEffect(() => {
    if (!packs || credits !== null) return;
    const first = packs.find((p) => methodsFor(p).length > 0);
    if (first) setCredits(first.credits);
  }, [packs, credits, methodsFor]);

  const pack = packs?.find((p) => p.credits === credits) ?? null;
  const methods = pack ? methodsFor(pack) : [];
  const chosenMethod = method && methods.includes(method) ? method : (methods[0] ?? null);
  const currencies = pack && chosenMethod ? currenciesFor(pack, chosenMethod) : [];
  const chosenCurrency = currency && currencies.includes(currency) ? currency : (currencies[0] ?? null);
  const price = pack && chosenCurrency ? pack.prices[chosenCurrency] : undefined;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!pack || !chosenMethod || !chosenCurrency || price === undefined) return;
    setBusy("creating");
    setError(null);
    const body = { amount: String(price), currency: chosenCurrency, credits: pack.credits };
    const backHere = `${window.location.origin}/buy/?payment={PAYMENT_ID}`;
    try {
      const api = await getApi();
      if (chosenMethod === "wechat") {
        const order = await unwrap(api.POST("/api/payments/wechat/create", { body: { ...body, scene: "native" } }));
        onWeChatOrder(order.payment_id);
        return;
      }
      const order = await unwrap(
        api.POST("/api/payments/stripe/create", {
          // Back here, to this payment, whether the payer pays or gives up (the server fills
          // in the id).
          body: { ...body, scene: "native", return_url: backHere, cancel_url: backHere },
        }),
      );
      if (!order.checkout_url) throw new Error("Stripe gave no checkout page for this order.");
      setBusy("redirecting");
      window.location.assign(order.checkout_url);
    } catch (failure) {
      setError(failure);
      setBusy(null);
      onFailedOrder(); // a refused order is still listed (as failed)
    }
  }

  if (configured.length === 0) {
    return <div className="alert alert-warning" role="status">{t("buy.unavailable")}</div>;
  }
  if (loadError) {
    return (
      <ErrorWithRetry error={loadError} onRetry={() => void load()} />
    );
  }
  if (!packs) {
    return (
      <p className="muted" role="status">
        {t("common.loading")}
      </p>
    );
  }

  const amount = price !== undefined && chosenCurrency ? money(price, chosenCurrency) : "";

  return (
    <form onSubmit={submit} className="card" noValidate aria-busy={busy !== null}>
      <fieldset className={styles.fieldset}>
        <legend>{t("buy.packs")}</legend>
        <div className={styles.packs}>
          {packs.map((p) => {
            const sellable = methodsFor(p).length > 0;
            const shownCurrencies = Object.keys(p.prices);
            return (
              <label key={p.credits} className={styles.pack}>
                <input
                  type="radio"
                  name="pack"
                  value={p.credits}
                  checked={credits === p.credits}
                  disabled={!sellable || busy !== null}
                  onChange={() => setCredits(p.credits)}
                  aria-describedby={sellable ? undefined : `pack-${p.credits}-note`}
                />
                <span className={styles.packCredits}>{t("buy.pack.credits", { n: number(p.credits) })}</span>
                {shownCurrencies.map((code) => (
                  <span key={code}>
                    <span className={styles.packPrice}>{money(p.prices[code], code)}</span>
                    <span className={styles.packUnit}>
                      {t("buy.pack.unit", { price: unitPrice(p.prices[code] / p.credits, code) })}
                    </span>
                  </span>
                ))}
                {!sellable && (
                  <span id={`pack-${p.credits}-note`} className={styles.packUnit}>
                    {t("buy.pack.notSold")}
                  </span>
                )}
              </label>
            );
          })}
        </div>
      </fieldset>

      {pack && (
        <fieldset className={styles.fieldset}>
          <legend>{t("buy.method")}</legend>
          {methods.length === 0 ? (
            <p className="muted">{t("buy.method.noneForPack")}</p>
          ) : (
            <div className={styles.methods}>
              {methods.map((m) => (
                <label key={m} className={styles.method}>
                  <input
                    type="radio"
                    name="method"
                    value={m}
                    checked={chosenMethod === m}
                    disabled={busy !== null}
                    onChange={() => setMethod(m)}
                  />
                  <span>
                    <strong>{methodLabel(t, m)}</strong>
                    <span className="hint">{t(`buy.method.${m}.hint` as MessageKey)}</span>
                  </span>
                </label>
              ))}
            </div>
          )}
          {currencies.length > 1 && (
            <div className="field">
              <label htmlFor="buy-currency">{t("buy.currency")}</label>
              <select
                id="buy-currency"
                className={styles.currency}
                value={chosenCurrency ?? ""}
                onChange={(event) => setCurrency(event.target.value)}
                disabled={busy !== null}
              >
                {currencies.map((code) => (
                  <option key={code} value={code}>
                    {code} — {money(pack.prices[code], code)}
                  </option>
                ))}
              </select>
            </div>
          )}
        </fieldset>
      )}

      <ErrorBox error={error} />
      {chosenMethod && price !== undefined && (
        <button type="submit" className="button" disabled={busy !== null}>
          {busy === "creating"
            ? t("buy.creating")
            : busy === "redirecting"
              ? t("buy.redirecting")
              : t(chosenMethod === "wechat" ? "buy.pay.wechat" : "buy.pay.stripe", { amount })}
        </button>
      )}
    </form>
  );
}

/** WeChat Pay sells in CNY only; Stripe in any currency the pack has a price in. */
function currenciesFor(pack: Pack, method: Method): string[] {
  const all = Object.keys(pack.prices).sort((a, b) => (a === "CNY" ? -1 : b === "CNY" ? 1 : a.localeCompare(b)));
  return method === "wechat" ? all.filter((c) => c === "CNY") : all;
}

function RecentPayments({ version, current }: { version: number; current: string | null }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { money } = useMoney();
  const [page, setPage] = useState(1);
  const [list, setList] = useState<Schemas["PaymentList"] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async (wanted: number) => {
    setError(null);
    try {
      const api = await getApi();
      setList(
        await unwrap(api.GET("/api/payments", { params: { query: { page: wanted, page_size: RECENT_PAGE_SIZE } } })),
      );
    } catch (failure) {
      setError(failure);
    }
  }, []);

  useEffect(() => {
    void load(page);
  }, [load, page, version, current]);

  const pages = list ? Math.max(1, Math.ceil(list.total / list.page_size)) : 1;

  return (
    <section aria-labelledby="recent-payments">
      <h2 id="recent-payments">{t("buy.recent")}</h2>
      {error ? (
        <ErrorWithRetry error={error} onRetry={() => void load(page)} />
      ) : !list ? (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      ) : list.payments.length === 0 ? (
        <p className="muted">{t("buy.recent.empty")}</p>
      ) : (
        <>
          <div className={`table-wrap ${styles.scroll}`}>
            <table>
              <caption className="visually-hidden">{t("buy.recent.caption")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("buy.col.date")}</th>
                  <th scope="col" className={styles.num}>
                    {t("buy.col.credits")}
                  </th>
                  <th scope="col" className={styles.num}>
                    {t("buy.col.amount")}
                  </th>
                  <th scope="col">{t("buy.col.method")}</th>
                  <th scope="col">{t("buy.col.status")}</th>
                  <th scope="col">
                    <span className="visually-hidden">{t("buy.col.action")}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.payments.map((p: Payment) => (
                  <tr key={p.payment_id} data-payment-id={p.payment_id}>
                    <td className={styles.nowrap}>
                      <time dateTime={p.created_at}>{date(p.created_at)}</time>
                    </td>
                    <td className={styles.num}>{number(p.credits)}</td>
                    <td className={`${styles.num} ${styles.nowrap}`}>{money(p.amount, p.currency)}</td>
                    <td>{methodLabel(t, p.provider)}</td>
                    <td>
                      <PaymentStatusBadge status={p.status} />
                    </td>
                    <td>
                      {p.payment_id === current ? (
                        <span className="muted">{t("buy.recent.current")}</span>
                      ) : (
                        <Link href={`/buy/?payment=${encodeURIComponent(p.payment_id)}`}>
                          {p.status === "pending" ? t("buy.recent.continue") : t("buy.recent.view")}
                        </Link>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={list.page} pages={pages} onPage={setPage} />
        </>
      )}
    </section>
  );
}

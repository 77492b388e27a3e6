"use client";
// Redeeming a code: its credits are added to the balance at once. `?code=` fills the field in, so
// a campaign can link straight here (the code is only sent when the user presses the button).
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useRef, useState, type FormEvent } from "react";

import { useErrorText } from "@/components/ui";
import { APIError, getApi, unwrap, type Schemas } from "@/lib/api/client";
import { RequireAuth, useAuth } from "@/lib/auth";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";

import styles from "./redeem.module.css";

type Redeemed = Schemas["RedeemOut"];

// The server's refusals (docs: redemption codes), in the reader's language.
const REFUSALS: Record<string, MessageKey> = {
  "Code not found": "redeem.error.notFound",
  "You have already redeemed this code": "redeem.error.already",
  "This code has expired": "redeem.error.expired",
  "This code has been used up": "redeem.error.usedUp",
  "This code is no longer valid": "redeem.error.disabled",
};

export default function RedeemPage() {
  const { t } = useI18n();
  return (
    <RequireAuth>
      <h1>{t("redeem.title")}</h1>
      <p>{t("redeem.intro")}</p>
      <Suspense
        fallback={
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        }
      >
        <RedeemFromQuery />
      </Suspense>
      <p className="hint">{t("redeem.rules")}</p>
    </RequireAuth>
  );
}

function RedeemFromQuery() {
  const code = useSearchParams().get("code") ?? "";
  return <RedeemForm initial={code.slice(0, 64)} />;
}

function RedeemForm({ initial }: { initial: string }) {
  const { t } = useI18n();
  const { number } = useFormat();
  const errorText = useErrorText();
  const { reload } = useAuth();
  const [code, setCode] = useState(initial);
  const [missing, setMissing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<Redeemed | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setDone(null);
    if (!code.trim()) {
      setMissing(true);
      inputRef.current?.focus();
      return;
    }
    setMissing(false);
    setBusy(true);
    try {
      const api = await getApi();
      const redeemed = await unwrap(api.POST("/api/users/redeem", { body: { code: code.trim() } }));
      setDone(redeemed);
      setCode("");
      void reload(); // the balance in the header
    } catch (failure) {
      setError(failure);
      inputRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  /** Why the code was refused, in the reader's language; any other failure as usual. */
  function refusal(failure: unknown): string {
    if (failure instanceof APIError) {
      if (typeof failure.detail === "string" && failure.detail in REFUSALS) {
        return t(REFUSALS[failure.detail]);
      }
      const seconds = /(\d+) seconds/.exec(failure.message)?.[1];
      if (failure.status === 429 && seconds) return t("redeem.error.tooMany", { seconds });
      if (failure.status === 422) return t("redeem.error.notFound"); // not shaped like a code
    }
    return errorText(failure);
  }

  const refused = error ? refusal(error) : null;

  return (
    <section aria-labelledby="redeem-form" className="card">
      <h2 id="redeem-form" className={styles.cardTitle}>
        {t("redeem.formTitle")}
      </h2>
      <form onSubmit={submit} noValidate>
        <label htmlFor="redeem-code">{t("redeem.label")}</label>
        <p id="redeem-code-hint" className="hint">
          {t("redeem.hint")}
        </p>
        <div className={styles.row}>
          <input
            ref={inputRef}
            id="redeem-code"
            type="text"
            value={code}
            maxLength={64}
            autoComplete="off"
            autoCapitalize="characters"
            spellCheck={false}
            aria-invalid={missing || refused !== null || undefined}
            aria-describedby={missing ? "redeem-code-hint redeem-code-error" : "redeem-code-hint"}
            onChange={(event) => setCode(event.target.value)}
          />
          <button type="submit" className="button" disabled={busy}>
            {busy ? t("redeem.busy") : t("redeem.button")}
          </button>
        </div>
        {missing && (
          <p id="redeem-code-error" className={styles.fieldError}>
            {t("redeem.required")}
          </p>
        )}
        {refused !== null && (
          <div className="alert alert-error" role="alert">
            {refused}
          </div>
        )}
      </form>
      <div aria-live="polite">
        {done && (
          <div className={`alert alert-success ${styles.done}`} data-testid="redeem-done">
            <p>{t("redeem.done", { n: number(done.credits_added), balance: number(done.credits) })}</p>
            <p>{t("redeem.doneCode", { code: done.code })}</p>
            <p>
              <Link href="/credits/">{t("redeem.viewHistory")}</Link>
            </p>
          </div>
        )}
      </div>
    </section>
  );
}

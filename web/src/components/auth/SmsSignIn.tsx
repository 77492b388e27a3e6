"use client";
// Sign in by SMS (docs/api.md §2.1, §2.2): number → "Send code" → 6-digit code → "Sign in",
// with a 60 s wait before another code can be asked for.
import { useEffect, useId, useRef, useState, type FormEvent } from "react";

import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useI18n } from "@/lib/i18n";
import { ErrorBox } from "@/components/ui";

import { useCountdown } from "./useCountdown";

export const RESEND_SECONDS = 60; // docs/api.md §2.1; the server refuses sooner with a 429

interface Props {
  /** Development: codes can be read at /api/_dev/sms/outbox. */
  outbox: boolean;
  onSignedIn: (pair: Schemas["TokenResponse"]) => Promise<void>;
}

export function SmsSignIn({ outbox, onSignedIn }: Props) {
  const { t } = useI18n();
  const id = useId();
  const [phone, setPhone] = useState("");
  const [sent, setSent] = useState<Schemas["SmsSendResponse"] | null>(null);
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState<"send" | "verify" | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [codeProblem, setCodeProblem] = useState("");
  const [phoneProblem, setPhoneProblem] = useState("");
  const [announcement, setAnnouncement] = useState("");
  const { left, start } = useCountdown();
  const codeRef = useRef<HTMLInputElement>(null);
  const phoneRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (sent) codeRef.current?.focus();
  }, [sent]);

  // Screen readers hear when the wait ends, not every tick.
  useEffect(() => {
    if (sent && left === 0) setAnnouncement(t("auth.resendReady"));
  }, [sent, left, t]);

  const send = async (event?: FormEvent) => {
    event?.preventDefault();
    setError(null);
    if (!phone.trim()) {
      setPhoneProblem(t("auth.phone.required"));
      phoneRef.current?.focus();
      return;
    }
    setPhoneProblem("");
    setBusy("send");
    try {
      const api = await getApi();
      const answer = await unwrap(api.POST("/api/auth/sms/send", { body: { phone_number: phone.trim() } }));
      setSent(answer);
      setCode("");
      start(RESEND_SECONDS);
      setAnnouncement(
        `${t("auth.sent", { phone: answer.phone_number, minutes: Math.round(answer.expires_in / 60) })} ${t("auth.resendWait", { n: RESEND_SECONDS })}`,
      );
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(null);
    }
  };

  const verify = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!/^\d{6}$/.test(code.trim())) {
      setCodeProblem(t("auth.code.invalid"));
      codeRef.current?.focus();
      return;
    }
    setCodeProblem("");
    setBusy("verify");
    try {
      const api = await getApi();
      const pair = await unwrap(
        api.POST("/api/auth/sms/login", { body: { phone_number: phone.trim(), code: code.trim() } }),
      );
      await onSignedIn(pair);
    } catch (caught) {
      setError(caught);
      codeRef.current?.select();
    } finally {
      setBusy(null);
    }
  };

  const changeNumber = () => {
    setSent(null);
    setCode("");
    setError(null);
    setCodeProblem("");
    window.setTimeout(() => phoneRef.current?.focus(), 0);
  };

  const outboxHref = `/api/_dev/sms/outbox?phone_number=${encodeURIComponent(phone.trim() || "86-13800138000")}`;

  return (
    <section aria-labelledby={`${id}-heading`} className="card">
      <h2 id={`${id}-heading`}>{t("auth.sms.heading")}</h2>

      <form onSubmit={send} noValidate>
        <div className="field">
          <label htmlFor={`${id}-phone`}>{t("auth.phone.label")}</label>
          <input
            ref={phoneRef}
            id={`${id}-phone`}
            type="tel"
            inputMode="tel"
            autoComplete="tel"
            placeholder="86-13800138000"
            aria-describedby={`${id}-phone-hint${phoneProblem ? ` ${id}-phone-problem` : ""}`}
            aria-invalid={phoneProblem ? true : undefined}
            value={phone}
            readOnly={sent !== null}
            maxLength={40}
            onChange={(event) => setPhone(event.target.value)}
          />
          <p id={`${id}-phone-hint`} className="hint">
            {t("auth.phone.hint")}
          </p>
          {phoneProblem && (
            <p id={`${id}-phone-problem`} className="alert alert-error">
              {phoneProblem}
            </p>
          )}
        </div>
        {sent === null && (
          <button type="submit" className="button" disabled={busy !== null}>
            {busy === "send" ? t("auth.sending") : t("auth.send")}
          </button>
        )}
      </form>

      {sent !== null && (
        <form onSubmit={verify} noValidate>
          <p className="hint">
            {t("auth.sent", { phone: sent.phone_number, minutes: Math.round(sent.expires_in / 60) })}
          </p>
          <div className="field">
            <label htmlFor={`${id}-code`}>{t("auth.code.label")}</label>
            <input
              ref={codeRef}
              id={`${id}-code`}
              type="text"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="\d{6}"
              maxLength={6}
              aria-describedby={`${id}-code-hint${codeProblem ? ` ${id}-code-problem` : ""}`}
              aria-invalid={codeProblem ? true : undefined}
              value={code}
              onChange={(event) => setCode(event.target.value.replace(/\D/g, ""))}
            />
            <p id={`${id}-code-hint`} className="hint">
              {t("auth.code.hint")}
            </p>
            {codeProblem && (
              <p id={`${id}-code-problem`} className="alert alert-error">
                {codeProblem}
              </p>
            )}
          </div>
          <div className="row">
            <button type="submit" className="button" disabled={busy !== null}>
              {busy === "verify" ? t("auth.signingIn") : t("auth.signIn")}
            </button>
            <button
              type="button"
              className="button secondary"
              disabled={left > 0 || busy !== null}
              onClick={() => void send()}
            >
              {left > 0 ? t("auth.resendIn", { n: left }) : t("auth.resend")}
            </button>
            <button type="button" className="button secondary" onClick={changeNumber} disabled={busy !== null}>
              {t("auth.changeNumber")}
            </button>
          </div>
          {/* Announced once when the wait starts and once when it ends, not every second. */}
          <p className="hint" role="timer" aria-live="off" data-testid="resend-countdown">
            {left > 0 ? t("auth.resendWait", { n: left }) : t("auth.resendReady")}
          </p>
        </form>
      )}

      <p className="visually-hidden" aria-live="polite">
        {announcement}
      </p>
      <ErrorBox error={error} />

      {outbox && (
        <p className="alert alert-info">
          <strong>{t("auth.dev.title")}</strong> {t("auth.dev.body")}{" "}
          <a href={outboxHref} target="_blank" rel="noreferrer">
            {t("auth.dev.outbox")}
          </a>
          {t("auth.dev.after")}
        </p>
      )}
    </section>
  );
}

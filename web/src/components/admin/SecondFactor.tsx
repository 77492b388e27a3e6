"use client";
// The console's second factor: enrol an authenticator app (QR code, confirm with a first code,
// the recovery codes shown this once), or verify a code for this session.
import { useEffect, useId, useRef, useState, type FormEvent } from "react";

import { ErrorBox } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useI18n } from "@/lib/i18n";
import type { Operator } from "@/lib/operator";

import styles from "./admin.module.css";

function CodeForm({ label, button, onCode }: { label: string; button: string; onCode: (code: string) => Promise<void> }) {
  const id = useId();
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onCode(code.trim());
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate>
      <div className="field">
        <label htmlFor={`${id}-code`}>{label}</label>
        <input
          id={`${id}-code`}
          type="text"
          inputMode="numeric"
          autoComplete="one-time-code"
          value={code}
          onChange={(event) => setCode(event.target.value)}
        />
      </div>
      <ErrorBox error={error} />
      <button type="submit" className="button" disabled={busy || code.trim().length < 6}>
        {button}
      </button>
    </form>
  );
}

/** The recovery codes, shown this once; focus goes to them so screen readers read the warning. */
function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const { t } = useI18n();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
  }, []);
  return (
    <section className="alert alert-warning" aria-labelledby="recovery-codes">
      <h2 id="recovery-codes" ref={heading} tabIndex={-1}>
        {t("admin.factor.recoveryTitle")}
      </h2>
      <p>
        <strong>{t("admin.factor.recoveryWarning")}</strong>
      </p>
      <ul className={styles.codes} data-testid="recovery-codes">
        {codes.map((code) => (
          <li key={code}>{code}</li>
        ))}
      </ul>
      <button type="button" className="button" onClick={onDone}>
        {t("admin.factor.recoveryDone")}
      </button>
    </section>
  );
}

export function SecondFactor({ operator, onPassed }: { operator: Operator; onPassed: () => Promise<void> }) {
  const { t } = useI18n();
  const [enrolment, setEnrolment] = useState<Schemas["EnrolmentOut"] | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function start() {
    setBusy(true);
    setError(null);
    try {
      const api = await getApi();
      setEnrolment(await unwrap(api.POST("/api/admin/totp/enroll")));
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  async function confirm(code: string) {
    const api = await getApi();
    const out = await unwrap(api.POST("/api/admin/totp/confirm", { body: { code } }));
    setCodes(out.recovery_codes);
  }

  async function verify(code: string) {
    const api = await getApi();
    await unwrap(api.POST("/api/admin/totp/verify", { body: { code } }));
    await onPassed();
  }

  return (
    <>
      <h1>{t("admin.factor.title")}</h1>
      {codes ? (
        <RecoveryCodes codes={codes} onDone={() => void onPassed()} />
      ) : operator.second_factor_enrolled ? (
        <section className="card">
          <p>{t("admin.factor.verifyIntro")}</p>
          <CodeForm label={t("admin.factor.code")} button={t("admin.factor.verify")} onCode={verify} />
        </section>
      ) : (
        <section className="card">
          <p>{t("admin.factor.enrolIntro")}</p>
          {enrolment ? (
            <>
              <div
                className={styles.qr}
                role="img"
                aria-label={t("admin.factor.qr")}
                data-testid="totp-qr"
                // The server renders the QR code as SVG from the otpauth URI.
                dangerouslySetInnerHTML={{ __html: enrolment.qr_svg }}
              />
              <p>
                {t("admin.factor.secret")}: <code data-testid="totp-secret">{enrolment.secret}</code>
              </p>
              <CodeForm label={t("admin.factor.code")} button={t("admin.factor.confirm")} onCode={confirm} />
            </>
          ) : (
            <>
              <ErrorBox error={error} />
              <button type="button" className="button" disabled={busy} onClick={() => void start()}>
                {t("admin.factor.start")}
              </button>
            </>
          )}
        </section>
      )}
    </>
  );
}

"use client";
// The secret that signs the user's task webhooks, its rotation, and how receivers check it.
import { useCallback, useEffect, useState } from "react";

import { ConfirmDialog } from "@/components/account/ConfirmDialog";
import { CopyButton } from "@/components/account/CopyButton";
import { CodeBlock, ErrorWithRetry } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { RequireAuth } from "@/lib/auth";
import { useFormat, useI18n } from "@/lib/i18n";

import styles from "./webhooks.module.css";

type Secret = Schemas["WebhookSecretView"];

const EVENTS = ["task.running", "task.succeeded", "task.failed", "task.timeout", "task.canceled"];

const VERIFY_SAMPLE = `from standardwebhooks import Webhook

hook = Webhook(VIDGATE_WEBHOOK_SECRET)  # the whsec_… string
event = hook.verify(raw_body, headers)  # raises on a bad signature or an old timestamp
if not already_handled(headers["webhook-id"]):
    handle(event["type"], event["data"])`;

export default function WebhooksPage() {
  return (
    <RequireAuth>
      <Webhooks />
    </RequireAuth>
  );
}

function Webhooks() {
  const { t } = useI18n();
  const { date } = useFormat();
  const [secret, setSecret] = useState<Secret | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [shown, setShown] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [rotating, setRotating] = useState(false);
  const [rotateError, setRotateError] = useState<unknown>(null);
  const [rotated, setRotated] = useState(false);

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      setSecret(await unwrap(api.GET("/api/users/webhook-secret")));
    } catch (failure) {
      setError(failure);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function rotate() {
    setRotating(true);
    setRotateError(null);
    try {
      const api = await getApi();
      setSecret(await unwrap(api.POST("/api/users/webhook-secret/rotate")));
      setRotated(true);
      setConfirming(false);
    } catch (failure) {
      setRotateError(failure);
    } finally {
      setRotating(false);
    }
  }

  return (
    <>
      <h1>{t("webhooks.title")}</h1>
      <p>{t("webhooks.intro")}</p>

      <section aria-labelledby="webhook-secret" className="card">
        <h2 id="webhook-secret" className={styles.cardTitle}>{t("webhooks.secret")}</h2>
        {error ? (
          <ErrorWithRetry error={error} onRetry={() => void load()} />
        ) : !secret ? (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        ) : (
          <>
            <p className="hint">{t("webhooks.secret.scope")}</p>
            <p className={styles.secretLabel}>{t("webhooks.secret.label")}</p>
            <div className={styles.secretRow}>
              <code className={styles.secret} data-testid="webhook-secret">
                {shown ? secret.secret : `whsec_${"•".repeat(24)}`}
                {!shown && <span className="visually-hidden"> ({t("webhooks.secret.hidden")})</span>}
              </code>
              <button type="button" className="button secondary" aria-pressed={shown} onClick={() => setShown(!shown)}>
                {shown ? t("webhooks.hide") : t("webhooks.show")}
              </button>
              <CopyButton text={secret.secret} />
            </div>
            <p className="muted">{t("webhooks.secret.created", { date: date(secret.created_at) })}</p>
            <div role="status" aria-live="polite">
              {rotated && <p className="alert alert-success">{t("webhooks.rotated")}</p>}
            </div>
            {secret.previous_secret_expires_at && (
              <p className="alert alert-info">
                {t("webhooks.previous", { date: date(secret.previous_secret_expires_at) })}
              </p>
            )}
            <button
              type="button"
              className="button secondary"
              onClick={() => {
                setRotateError(null);
                setConfirming(true);
              }}
            >
              {t("webhooks.rotate")}
            </button>
          </>
        )}
      </section>

      <section aria-labelledby="webhook-how">
        <h2 id="webhook-how">{t("webhooks.how")}</h2>
        <p>{t("webhooks.how.url")}</p>
        <p>{t("webhooks.how.events")}</p>
        <ul className={styles.events}>
          {EVENTS.map((name) => (
            <li key={name}>
              <code>{name}</code>
            </li>
          ))}
        </ul>
        <p>{t("webhooks.how.data")}</p>

        <h3>{t("webhooks.headers")}</h3>
        <p>{t("webhooks.headers.intro")}</p>
        <dl className={styles.headers}>
          <dt>webhook-id</dt>
          <dd>{t("webhooks.header.id")}</dd>
          <dt>webhook-timestamp</dt>
          <dd>{t("webhooks.header.timestamp")}</dd>
          <dt>webhook-signature</dt>
          <dd>{t("webhooks.header.signature")}</dd>
        </dl>

        <h3>{t("webhooks.verify")}</h3>
        <p>{t("webhooks.verify.intro")}</p>
        <CodeBlock label={t("webhooks.verify")} className={styles.code}>
          {VERIFY_SAMPLE}
        </CodeBlock>
        <p>{t("webhooks.retries")}</p>
      </section>

      <ConfirmDialog
        open={confirming}
        title={t("webhooks.rotate.title")}
        confirmLabel={t("webhooks.rotate.confirm")}
        busyLabel={t("webhooks.rotating")}
        busy={rotating}
        error={rotateError}
        tone="primary"
        onConfirm={() => void rotate()}
        onCancel={() => setConfirming(false)}
      >
        <p>{t("webhooks.rotate.body")}</p>
      </ConfirmDialog>
    </>
  );
}

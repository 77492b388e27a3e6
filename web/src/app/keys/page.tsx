"use client";
// Personal API keys: create one (its secret shown this once), see the active ones, revoke.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";

import { ConfirmDialog } from "@/components/account/ConfirmDialog";
import { CopyButton } from "@/components/account/CopyButton";
import { CodeBlock, ErrorBox, ErrorWithRetry } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { RequireAuth } from "@/lib/auth";
import { apiOrigin, loadConfig } from "@/lib/config";
import { useFormat, useI18n } from "@/lib/i18n";

import styles from "./keys.module.css";

type Key = Schemas["ApiKeyOut"];
type Created = Schemas["ApiKeyCreated"];

export default function KeysPage() {
  return (
    <RequireAuth>
      <Keys />
    </RequireAuth>
  );
}

function Keys() {
  const { t } = useI18n();
  const { date } = useFormat();
  const [keys, setKeys] = useState<Key[] | null>(null);
  const [listError, setListError] = useState<unknown>(null);
  const [created, setCreated] = useState<Created | null>(null);
  const [revoking, setRevoking] = useState<Key | null>(null);
  const [revokeBusy, setRevokeBusy] = useState(false);
  const [revokeError, setRevokeError] = useState<unknown>(null);
  const [announcement, setAnnouncement] = useState("");
  const [origin, setOrigin] = useState("");

  const load = useCallback(async () => {
    setListError(null);
    try {
      const api = await getApi();
      setKeys((await unwrap(api.GET("/api/users/api-keys"))).api_keys);
    } catch (failure) {
      setListError(failure);
    }
  }, []);

  useEffect(() => {
    void load();
    loadConfig().then(
      (config) => setOrigin(apiOrigin(config) || window.location.origin),
      () => setOrigin(window.location.origin),
    );
  }, [load]);

  async function revoke() {
    if (!revoking) return;
    setRevokeBusy(true);
    setRevokeError(null);
    try {
      const api = await getApi();
      await unwrap(api.DELETE("/api/users/api-keys/{key_id}", { params: { path: { key_id: revoking.id } } }));
      setAnnouncement(t("keys.revoked", { name: revoking.name }));
      if (created?.id === revoking.id) setCreated(null);
      setRevoking(null);
      await load();
    } catch (failure) {
      setRevokeError(failure);
    } finally {
      setRevokeBusy(false);
    }
  }

  return (
    <>
      <h1>{t("keys.title")}</h1>
      <p>{t("keys.intro")}</p>
      <p className="muted">{t("keys.example")}</p>
      <CodeBlock label={t("keys.example")} className={styles.example}>
        {`curl ${origin || "https://…"}/api/videos/text-to-video \\
  -H "X-API-Key: <your key>" -H "Content-Type: application/json" \\
  -d '{"prompt": "a paper boat on a rainy street"}'`}
      </CodeBlock>

      {created ? (
        <CreatedKey created={created} onDone={() => setCreated(null)} />
      ) : (
        <CreateForm
          onCreated={(key) => {
            setCreated(key);
            setAnnouncement("");
            void load();
          }}
        />
      )}

      <section aria-labelledby="keys-list">
        <h2 id="keys-list">{t("keys.list")}</h2>
        <div role="status" aria-live="polite">
          {announcement && <p className="alert alert-success">{announcement}</p>}
        </div>
        {listError ? (
          <ErrorWithRetry error={listError} onRetry={() => void load()} />
        ) : !keys ? (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        ) : keys.length === 0 ? (
          <p className="muted">{t("keys.list.empty")}</p>
        ) : (
          <div className={`table-wrap ${styles.scroll}`}>
            <table>
              <caption className="visually-hidden">{t("keys.list.caption")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("keys.col.name")}</th>
                  <th scope="col">{t("keys.col.key")}</th>
                  <th scope="col">{t("keys.col.created")}</th>
                  <th scope="col">{t("keys.col.used")}</th>
                  <th scope="col">
                    <span className="visually-hidden">{t("keys.col.actions")}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((key) => (
                  <tr key={key.id} data-key-id={key.id}>
                    <th scope="row" className={styles.keyName}>
                      {key.name}
                    </th>
                    <td className="mono">{key.prefix}…</td>
                    <td className={styles.nowrap}>{date(key.created_at)}</td>
                    <td className={styles.nowrap}>{key.last_used_at ? date(key.last_used_at) : t("keys.neverUsed")}</td>
                    <td>
                      <button
                        type="button"
                        className="button secondary"
                        aria-label={t("keys.revoke.named", { name: key.name })}
                        onClick={() => {
                          setRevokeError(null);
                          setRevoking(key);
                        }}
                      >
                        {t("keys.revoke")}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <ConfirmDialog
        open={revoking !== null}
        title={t("keys.revoke.title", { name: revoking?.name ?? "" })}
        confirmLabel={t("keys.revoke.confirm")}
        busyLabel={t("keys.revoking")}
        busy={revokeBusy}
        error={revokeError}
        onConfirm={() => void revoke()}
        onCancel={() => setRevoking(null)}
      >
        <p>{t("keys.revoke.body", { prefix: revoking?.prefix ?? "" })}</p>
      </ConfirmDialog>
    </>
  );
}

function CreateForm({ onCreated }: { onCreated: (key: Created) => void }) {
  const { t } = useI18n();
  const [name, setName] = useState("");
  const [missing, setMissing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    if (!name.trim()) {
      setMissing(true);
      inputRef.current?.focus();
      return;
    }
    setMissing(false);
    setBusy(true);
    try {
      const api = await getApi();
      const key = await unwrap(api.POST("/api/users/api-keys", { body: { name: name.trim() } }));
      setName("");
      onCreated(key);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="keys-create" className="card">
      <h2 id="keys-create" className={styles.cardTitle}>{t("keys.create")}</h2>
      <form onSubmit={submit} noValidate>
        <label htmlFor="key-name">{t("keys.name.label")}</label>
        <p id="key-name-hint" className="hint">
          {t("keys.name.hint")}
        </p>
        <div className={styles.createRow}>
          <input
            ref={inputRef}
            id="key-name"
            type="text"
            value={name}
            maxLength={100}
            autoComplete="off"
            aria-invalid={missing || undefined}
            aria-describedby={missing ? "key-name-hint key-name-error" : "key-name-hint"}
            onChange={(event) => setName(event.target.value)}
          />
          <button type="submit" className="button" disabled={busy}>
            {busy ? t("keys.creating") : t("keys.createButton")}
          </button>
        </div>
        {missing && (
          <p id="key-name-error" className={styles.fieldError}>
            {t("keys.name.required")}
          </p>
        )}
        <ErrorBox error={error} />
      </form>
    </section>
  );
}

function CreatedKey({ created, onDone }: { created: Created; onDone: () => void }) {
  const { t } = useI18n();
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    headingRef.current?.focus(); // straight to the key, and screen readers read the warning next
  }, []);

  return (
    <section aria-labelledby="key-created" className={`alert alert-warning ${styles.created}`}>
      <h2 id="key-created" ref={headingRef} tabIndex={-1}>
        {t("keys.created.title", { name: created.name })}
      </h2>
      <p>
        <strong>{t("keys.created.warning")}</strong>
      </p>
      <label htmlFor="new-key">{t("keys.created.label")}</label>
      <div className={styles.copyRow}>
        <input
          id="new-key"
          type="text"
          readOnly
          value={created.key}
          className={styles.secret}
          onFocus={(event) => event.currentTarget.select()}
        />
        <CopyButton text={created.key} />
      </div>
      <button type="button" className="button" onClick={onDone}>
        {t("keys.created.done")}
      </button>
    </section>
  );
}

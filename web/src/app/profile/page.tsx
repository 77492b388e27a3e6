"use client";
// The user's profile: what sign-in gave (phone, email, region), the editable username and avatar,
// and deleting the account.
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useState, type FormEvent, type InputHTMLAttributes } from "react";

import { ConfirmDialog } from "@/components/account/ConfirmDialog";
import { ErrorBox, ErrorWithRetry, Notice } from "@/components/ui";
import { APIError, getApi, unwrap, type Schemas } from "@/lib/api/client";
import { RequireAuth, useAuth } from "@/lib/auth";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import { tokens } from "@/lib/tokens";

import styles from "./profile.module.css";

type Profile = Schemas["ProfileResponse"];
type Field = "username" | "avatar_url";

export default function ProfilePage() {
  const { t } = useI18n();
  const router = useRouter();
  const [deleted, setDeleted] = useState(false);

  // Once deleted, the page leaves RequireAuth before the tokens go, so the sign-in page is
  // reached directly rather than with a "come back to the profile" link.
  useEffect(() => {
    if (!deleted) return;
    tokens.clear();
    router.replace("/login/");
  }, [deleted, router]);

  if (deleted) return <Notice tone="success">{t("profile.deleted")}</Notice>;
  return (
    <RequireAuth>
      <ProfileView onDeleted={() => setDeleted(true)} />
    </RequireAuth>
  );
}

/** The server's 422 field errors by field, and whatever else it said. */
function splitErrors(error: unknown): { fields: Partial<Record<Field, string>>; rest: string[] } {
  const fields: Partial<Record<Field, string>> = {};
  const rest: string[] = [];
  if (error instanceof APIError && Array.isArray(error.detail)) {
    for (const item of error.detail as { loc?: unknown[]; msg?: string }[]) {
      const field = Array.isArray(item?.loc) ? item.loc[item.loc.length - 1] : undefined;
      const message = String(item?.msg ?? "").replace(/^Value error, /, "");
      if (field === "username" || field === "avatar_url") {
        fields[field] = fields[field] ? `${fields[field]} ${message}` : message;
      } else {
        rest.push(message);
      }
    }
  }
  return { fields, rest };
}

function ProfileView({ onDeleted }: { onDeleted: () => void }) {
  const { t } = useI18n();
  const { date } = useFormat();
  const { reload } = useAuth();
  const [profile, setProfile] = useState<Profile | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [username, setUsername] = useState("");
  const [avatarUrl, setAvatarUrl] = useState("");
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);

  const load = useCallback(async () => {
    setLoadError(null);
    try {
      const api = await getApi();
      const data = await unwrap(api.GET("/api/users/profile"));
      setProfile(data);
      setUsername(data.username ?? "");
      setAvatarUrl(data.avatar_url ?? "");
    } catch (failure) {
      setLoadError(failure);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setSaving(true);
    setSaveError(null);
    setSaved(false);
    try {
      const api = await getApi();
      // The server checks both (3–50 characters; an http(s) URL) and says what is wrong.
      const updated = await unwrap(
        api.PUT("/api/users/profile", {
          body: { username, avatar_url: avatarUrl.trim() === "" ? null : avatarUrl.trim() },
        }),
      );
      setProfile(updated);
      setUsername(updated.username ?? "");
      setAvatarUrl(updated.avatar_url ?? "");
      setSaved(true);
      void reload();
    } catch (failure) {
      setSaveError(failure);
    } finally {
      setSaving(false);
    }
  }

  if (loadError) {
    return (
      <>
        <h1>{t("profile.title")}</h1>
        <ErrorWithRetry error={loadError} onRetry={() => void load()} />
      </>
    );
  }
  if (!profile) {
    return (
      <>
        <h1>{t("profile.title")}</h1>
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      </>
    );
  }

  const { fields, rest } = splitErrors(saveError);
  const otherError = saveError && !(saveError instanceof APIError && Array.isArray(saveError.detail)) ? saveError : null;
  const regionKey = `profile.region.${profile.region}` as MessageKey;
  const region = t(regionKey) === regionKey ? profile.region : `${t(regionKey)} (${profile.region})`;

  return (
    <>
      <h1>{t("profile.title")}</h1>

      <section aria-labelledby="profile-account" className="card">
        <div className={styles.identity}>
          {profile.avatar_url && (
            // eslint-disable-next-line @next/next/no-img-element
            <img className={styles.avatar} src={profile.avatar_url} alt={t("profile.avatar.alt")} width={72} height={72} />
          )}
          <h2 id="profile-account">{t("profile.account")}</h2>
        </div>
        <dl className={styles.facts}>
          <div>
            <dt>{t("profile.phone")}</dt>
            <dd data-testid="profile-phone">{profile.phone_number ?? t("profile.notSet")}</dd>
          </div>
          <div>
            <dt>{t("profile.email")}</dt>
            <dd>{profile.email ?? t("profile.notSet")}</dd>
          </div>
          <div>
            <dt>{t("profile.region")}</dt>
            <dd>{region}</dd>
          </div>
          <div>
            <dt>{t("profile.created")}</dt>
            <dd>{date(profile.created_at)}</dd>
          </div>
          <div>
            <dt>{t("profile.lastLogin")}</dt>
            <dd>{date(profile.last_login_at)}</dd>
          </div>
        </dl>
        <p className="hint">{t("profile.readOnly")}</p>
      </section>

      <section aria-labelledby="profile-edit" className="card">
        <h2 id="profile-edit" className={styles.cardTitle}>{t("profile.edit")}</h2>
        <form onSubmit={save} noValidate>
          <ProfileField
            id="profile-username"
            label={t("profile.username")}
            hint={t("profile.username.hint")}
            error={fields.username}
            input={{ type: "text", value: username, autoComplete: "username", onChange: (event) => setUsername(event.target.value) }}
          />
          <ProfileField
            id="profile-avatar"
            label={t("profile.avatar")}
            hint={t("profile.avatar.hint")}
            error={fields.avatar_url}
            input={{
              type: "url",
              inputMode: "url",
              value: avatarUrl,
              autoComplete: "photo",
              placeholder: "https://",
              onChange: (event) => setAvatarUrl(event.target.value),
            }}
          />
          <div aria-live="polite">
            {(fields.username || fields.avatar_url || rest.length > 0) && (
              <div className="alert alert-error" role="alert">
                {t("profile.fixErrors")}
                {rest.length > 0 && ` ${rest.join(" ")}`}
              </div>
            )}
            {saved && <p className="alert alert-success">{t("profile.saved")}</p>}
          </div>
          <ErrorBox error={otherError} />
          <button type="submit" className="button" disabled={saving}>
            {saving ? t("profile.saving") : t("profile.save")}
          </button>
        </form>
      </section>

      <DeleteAccount onDeleted={onDeleted} />
    </>
  );
}

function DeleteAccount({ onDeleted }: { onDeleted: () => void }) {
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const word = t("profile.delete.word");
  const matches = typed.trim() === word;

  async function remove() {
    setBusy(true);
    setError(null);
    try {
      const api = await getApi();
      await unwrap(api.DELETE("/api/users/account"));
      setOpen(false);
      onDeleted();
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="profile-delete" className={`card ${styles.danger}`}>
      <h2 id="profile-delete">{t("profile.delete")}</h2>
      <p>{t("profile.delete.intro")}</p>
      <button
        type="button"
        className="button danger"
        onClick={() => {
          setTyped("");
          setError(null);
          setOpen(true);
        }}
      >
        {t("profile.delete.open")}
      </button>
      <ConfirmDialog
        open={open}
        title={t("profile.delete.title")}
        confirmLabel={t("profile.delete.confirm")}
        busyLabel={t("profile.deleting")}
        busy={busy}
        confirmDisabled={!matches}
        error={error}
        onConfirm={() => void remove()}
        onCancel={() => setOpen(false)}
      >
        <p>{t("profile.delete.body")}</p>
        <label htmlFor="delete-word">
          {t("profile.delete.type", { word })}
        </label>
        <input
          id="delete-word"
          type="text"
          value={typed}
          autoComplete="off"
          autoCapitalize="characters"
          spellCheck={false}
          data-autofocus
          onChange={(event) => setTyped(event.target.value)}
        />
      </ConfirmDialog>
    </section>
  );
}

/** A labelled input with its hint and, after a refused save, the server's message for it. */
function ProfileField({
  id,
  label,
  hint,
  error,
  input,
}: {
  id: string;
  label: string;
  hint: string;
  error?: string;
  input: InputHTMLAttributes<HTMLInputElement>;
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        {...input}
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-hint ${id}-error` : `${id}-hint`}
      />
      <p id={`${id}-hint`} className="hint">
        {hint}
      </p>
      {error && (
        <p id={`${id}-error`} className={styles.fieldError}>
          {error}
        </p>
      )}
    </div>
  );
}

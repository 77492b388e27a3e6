"use client";
// Google's redirect flow: ask the server for the consent URL (it keeps the PKCE verifier and
// nonce under `state`), remember where to return, and leave for Google.
import { useState } from "react";

import { getApi, unwrap } from "@/lib/api/client";
import { useI18n } from "@/lib/i18n";
import { ErrorBox } from "@/components/ui";

import { googleRedirectUri, rememberNext } from "./next";

export function GoogleSignIn({ next }: { next: string }) {
  const { t } = useI18n();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const api = await getApi();
      const { url } = await unwrap(
        api.GET("/api/auth/google/authorize-url", { params: { query: { redirect_uri: googleRedirectUri() } } }),
      );
      rememberNext(next);
      window.location.assign(url);
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  return (
    <div>
      <button type="button" className="button secondary google-button" onClick={() => void start()} disabled={busy}>
        {busy ? t("auth.google.redirecting") : t("auth.google")}
      </button>
      <ErrorBox error={error} />
    </div>
  );
}

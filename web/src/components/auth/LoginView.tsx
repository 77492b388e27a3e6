"use client";
// The sign-in page: SMS always, Google when the server has it configured. Signed-in visitors
// go straight on; after signing in, to `next` (a path on this site) or the dashboard.
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";

import type { Schemas } from "@/lib/api/client";
import { useAuth } from "@/lib/auth";
import { loadConfig, type WebConfig } from "@/lib/config";
import { useI18n } from "@/lib/i18n";
import { ErrorBox } from "@/components/ui";

import { GoogleSignIn } from "./GoogleSignIn";
import { safeNext } from "./next";
import { SmsSignIn } from "./SmsSignIn";
import styles from "./auth.module.css";

export function LoginView() {
  const { t } = useI18n();
  const { status, signIn } = useAuth();
  const router = useRouter();
  const next = safeNext(useSearchParams().get("next"));
  const [config, setConfig] = useState<WebConfig | null>(null);
  const [configError, setConfigError] = useState<unknown>(null);
  const [signingIn, setSigningIn] = useState(false);

  useEffect(() => {
    loadConfig().then(setConfig, setConfigError);
  }, []);

  useEffect(() => {
    if (status === "signedIn") router.replace(signingIn ? next : "/");
  }, [status, signingIn, next, router]);

  const onSignedIn = async (pair: Schemas["TokenResponse"]) => {
    setSigningIn(true);
    await signIn(pair);
  };

  if (status === "signedIn") {
    return (
      <p className="muted" role="status">
        {t("auth.already")}
      </p>
    );
  }

  return (
    <div className={styles.narrow}>
      <h1>{t("auth.title")}</h1>
      <p className="muted">
        {config && config.signup_bonus_credits > 0
          ? t("auth.introBonus", { n: config.signup_bonus_credits })
          : t("auth.intro")}
      </p>
      <ErrorBox error={configError} />
      <SmsSignIn outbox={config?.sms_outbox ?? false} onSignedIn={onSignedIn} />
      {config?.google_sign_in && (
        <section className={`card ${styles.alt}`} aria-label={t("auth.google")}>
          <p className={styles.or} aria-hidden="true">
            {t("auth.or")}
          </p>
          <GoogleSignIn next={next} />
        </section>
      )}
    </div>
  );
}

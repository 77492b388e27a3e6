"use client";
// Where Google sends the browser back: trade `code` + `state` for our tokens, then go on to the
// page the sign-in started from.
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useRef, useState } from "react";

import { getApi, unwrap } from "@/lib/api/client";
import { useAuth } from "@/lib/auth";
import { useI18n } from "@/lib/i18n";
import { ErrorBox } from "@/components/ui";

import { googleRedirectUri, takeNext } from "./next";
import styles from "./auth.module.css";

export function GoogleCallback() {
  const { t } = useI18n();
  const { signIn } = useAuth();
  const router = useRouter();
  const params = useSearchParams();
  const [error, setError] = useState<unknown>(null);
  const [problem, setProblem] = useState<"denied" | "missing" | null>(null);
  const started = useRef(false);

  const code = params.get("code");
  const state = params.get("state");
  const denied = params.get("error");

  useEffect(() => {
    // Once only: a code can be redeemed once, and strict mode runs effects twice.
    if (started.current) return;
    started.current = true;
    if (denied) {
      setProblem("denied");
      return;
    }
    if (!code || !state) {
      setProblem("missing");
      return;
    }
    void (async () => {
      try {
        const api = await getApi();
        const pair = await unwrap(
          api.POST("/api/auth/google/login", { body: { code, state, redirect_uri: googleRedirectUri() } }),
        );
        await signIn(pair);
        router.replace(takeNext());
      } catch (caught) {
        setError(caught);
      }
    })();
  }, [code, state, denied, signIn, router]);

  const failed = Boolean(error || problem);
  return (
    <div className={styles.narrow}>
      <h1>{t("auth.google.heading")}</h1>
      {!failed && (
        <p className="muted" role="status">
          {t("auth.google.working")}
        </p>
      )}
      {problem && (
        <div className="alert alert-error" role="alert">
          {problem === "denied" ? t("auth.google.denied", { error: denied ?? "" }) : t("auth.google.missing")}
        </div>
      )}
      <ErrorBox error={error} />
      {failed && (
        <p>
          <Link href="/login/" className="button">
            {t("auth.google.back")}
          </Link>
        </p>
      )}
    </div>
  );
}

"use client";
// The top bar: brand, the signed-in navigation with the balance, the language switch.
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useState } from "react";

import { useAuth } from "@/lib/auth";
import { LOCALES, useI18n, type Locale } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import { useOperator } from "@/lib/operator";

const LINKS: { href: string; label: MessageKey }[] = [
  { href: "/", label: "nav.dashboard" },
  { href: "/create/", label: "nav.create" },
  { href: "/history/", label: "nav.history" },
  { href: "/credits/", label: "nav.credits" },
  { href: "/buy/", label: "nav.buy" },
  { href: "/redeem/", label: "nav.redeem" },
  { href: "/keys/", label: "nav.keys" },
  { href: "/webhooks/", label: "nav.webhooks" },
  { href: "/profile/", label: "nav.profile" },
];

export function SiteHeader() {
  const { t, locale, setLocale } = useI18n();
  const { status, user, signOut } = useAuth();
  const pathname = usePathname();
  const [open, setOpen] = useState(false);
  const { status: operatorStatus } = useOperator();
  // The console link only for operators (GET /api/admin/me answered 200).
  const links = operatorStatus === "operator" ? [...LINKS, { href: "/admin/", label: "nav.console" as MessageKey }] : LINKS;

  return (
    <header className="site-header">
      <div className="site-header-row container">
        <Link href="/" className="brand">
          {t("app.name")}
        </Link>
        {status === "signedIn" && (
          <button
            type="button"
            className="menu-toggle button secondary"
            aria-expanded={open}
            aria-controls="site-nav"
            onClick={() => setOpen(!open)}
          >
            {t("nav.menu")}
          </button>
        )}
        <div className="header-tools">
          {status === "signedIn" && user && (
            <Link href="/credits/" className="balance" data-testid="header-balance">
              {t("common.credits", { n: user.available })}
            </Link>
          )}
          <label className="lang-switch">
            <span className="visually-hidden">{t("lang.label")}</span>
            <select value={locale} onChange={(event) => setLocale(event.target.value as Locale)} aria-label={t("lang.label")}>
              {LOCALES.map((code) => (
                <option key={code} value={code}>
                  {code === "zh" ? "中文" : "English"}
                </option>
              ))}
            </select>
          </label>
          {status === "signedIn" ? (
            <button type="button" className="button secondary" onClick={() => void signOut()}>
              {t("nav.signOut")}
            </button>
          ) : (
            status === "signedOut" &&
            !pathname.startsWith("/login") && (
              <Link href="/login/" className="button">
                {t("nav.signIn")}
              </Link>
            )
          )}
        </div>
      </div>
      {status === "signedIn" && (
        <nav id="site-nav" aria-label={t("nav.main")} className={`site-nav container${open ? " open" : ""}`}>
          {links.map((link) => {
            const active = link.href === "/" ? pathname === "/" : pathname.startsWith(link.href);
            return (
              <Link
                key={link.href}
                href={link.href}
                aria-current={active ? "page" : undefined}
                onClick={() => setOpen(false)}
              >
                {t(link.label)}
              </Link>
            );
          })}
        </nav>
      )}
    </header>
  );
}

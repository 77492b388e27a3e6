"use client";
// The frame of every console page: signed in, an operator (a plain user is told the console is for
// operators only), past the second factor when the deployment asks for it, then the console's own
// navigation above the page.
import Link from "next/link";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";

import { ErrorWithRetry } from "@/components/ui";
import { APIError } from "@/lib/api/client";
import { RequireAuth } from "@/lib/auth";
import { useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import { needsSecondFactor, useOperator, type Operator } from "@/lib/operator";

import styles from "./admin.module.css";
import { SecondFactor } from "./SecondFactor";

const LINKS: { href: string; label: MessageKey; also?: string }[] = [
  { href: "/admin/", label: "admin.nav.overview" },
  { href: "/admin/users/", label: "admin.nav.users", also: "/admin/user/" },
  { href: "/admin/tasks/", label: "admin.nav.tasks", also: "/admin/task/" },
  { href: "/admin/payments/", label: "admin.nav.payments", also: "/admin/payment/" },
  { href: "/admin/codes/", label: "admin.nav.codes", also: "/admin/codes/batch/" },
  { href: "/admin/channels/", label: "admin.nav.channels" },
  { href: "/admin/moderation/", label: "admin.nav.moderation" },
  { href: "/admin/audit/", label: "admin.nav.audit" },
];

export function roleLabel(t: (key: MessageKey) => string, role: string): string {
  const key = `admin.role.${role}` as MessageKey;
  const text = t(key);
  return text === key ? role : text;
}

function ConsoleNav({ operator }: { operator: Operator }) {
  const { t } = useI18n();
  const pathname = usePathname();
  const here = pathname.endsWith("/") ? pathname : `${pathname}/`;
  return (
    <>
      <nav aria-label={t("admin.nav")} className={styles.consoleNav}>
        {LINKS.map((link) => {
          const active = here === link.href || (link.also !== undefined && here === link.also);
          return (
            <Link key={link.href} href={link.href} aria-current={active ? "page" : undefined}>
              {t(link.label)}
            </Link>
          );
        })}
      </nav>
      <p className={`muted ${styles.who}`} data-testid="console-role">
        {t("admin.role", { name: operator.name, role: roleLabel(t, operator.role) })}
      </p>
    </>
  );
}

function OperatorsOnly() {
  const { t } = useI18n();
  return (
    <>
      <h1>{t("admin.denied.title")}</h1>
      <div className="alert alert-warning" role="alert" data-testid="console-denied">
        {t("admin.denied.body")}
      </div>
      <p>
        <Link href="/">{t("admin.denied.home")}</Link>
      </p>
    </>
  );
}

function Gate({ children }: { children: (operator: Operator) => ReactNode }) {
  const { t } = useI18n();
  const { status, operator, error, reload } = useOperator();
  if (status === "loading") {
    return (
      <p className="muted" role="status">
        {t("common.loading")}
      </p>
    );
  }
  if (status === "notOperator") return <OperatorsOnly />;
  if (status === "error" || !operator) {
    return (
      <>
        <h1>{t("nav.console")}</h1>
        <ErrorWithRetry error={error} onRetry={() => void reload()} />
      </>
    );
  }
  if (needsSecondFactor(operator)) return <SecondFactor operator={operator} onPassed={reload} />;
  return (
    <>
      <ConsoleNav operator={operator} />
      {children(operator)}
    </>
  );
}

/** A console page: `children` gets the operator once every gate is passed. */
export function ConsolePage({ children }: { children: (operator: Operator) => ReactNode }) {
  return (
    <RequireAuth>
      <Gate>{children}</Gate>
    </RequireAuth>
  );
}

/** The server's refusals operators meet, in the page's language (others as the server said). */
const REFUSALS: Record<string, MessageKey> = {
  "Admins only": "admin.adminsOnly",
  "Adjustments this large need an admin": "admin.overLimit",
  "Operators cannot change their own role or account state": "admin.ownAccount",
  "The order is under dispute; refund it once the dispute is closed": "admin.refusal.underDispute",
  "Payment not found": "admin.refusal.paymentNotFound",
  "Refund not found": "admin.refusal.refundNotFound",
  "Batch not found": "admin.refusal.batchNotFound",
  "Redemption code not found": "admin.refusal.codeNotFound",
  "This batch is already disabled": "admin.refusal.batchDisabled",
  "This code is already disabled": "admin.refusal.codeDisabled",
  "Invalid batch": "admin.refusal.invalidBatch",
};

/** Refusals that carry figures or the gateway's words: the pattern, and the words it becomes. */
const PATTERNS: [RegExp, MessageKey][] = [
  [/^Only a paid order can be refunded; this one is (?<status>\w+)$/, "admin.refusal.notPaid"],
  [/^Cannot refund (?<amount>[\d.]+ [A-Z]{3}): (?<left>[\d.]+ [A-Z]{3}) of the order remains refundable$/, "admin.refusal.tooLarge"],
  [/^(?<gateway>.+) refused the refund: (?<message>.*)$/s, "admin.refusal.gatewayRefused"],
  [/^(?<gateway>.+) did not answer; the refund stays pending until .+ reports on it$/, "admin.refusal.noAnswer"],
  [/^The gateway has answered this refund \(it is (?<status>\w+)\); nothing to retry$/, "admin.refusal.answered"],
];

/** Console words for a payment's or a refund's status (the buy page's for an order). */
export function paymentStatusLabel(t: (key: MessageKey) => string, status: string): string {
  const key = `buy.status.${status}` as MessageKey;
  const text = t(key);
  return text === key ? status : text;
}

export function refundStatusLabel(t: (key: MessageKey) => string, status: string): string {
  const key = `admin.refund.${status}` as MessageKey;
  const text = t(key);
  return text === key ? status : text;
}

/** A gateway's name as the buy page gives it. */
export function providerLabel(t: (key: MessageKey) => string, provider: string): string {
  const key = `buy.method.${provider}` as MessageKey;
  const text = t(key);
  return text === key ? provider : text;
}

/** How many digits a currency's minor unit has (2 for CNY and USD, 0 for JPY). */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export function useOperatorError(): (error: unknown) => unknown {
  const { t } = useI18n();
  return (error) => {
    if (error instanceof APIError && typeof error.detail === "string" && error.detail in REFUSALS) {
      return new APIError(error.status, t(REFUSALS[error.detail]));
    }
    if (error instanceof APIError && typeof error.detail === "string") {
      for (const [pattern, key] of PATTERNS) {
        const found = pattern.exec(error.detail);
        if (found) return new APIError(error.status, t(key, { ...found.groups }));
      }
    }
    return error;
  };
}

/** A wide table: it scrolls inside its frame (focusable, so a keyboard can scroll it too). */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  );
}

/** A short form of an id for tables (the whole id is in the link's title and on the detail page). */
export function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

"use client";
// /admin/user/?id=<user_id>: one account whole (a static export has no dynamic segments, so the id
// rides in the query): profile and balance, credit adjustment with a reason, role, suspension,
// sign-out everywhere, deletion, and the ledger, tasks, payments, sessions and API keys.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";

import {
  ConsolePage,
  minorDigits,
  paymentStatusLabel,
  providerLabel,
  roleLabel,
  shortId,
  TableWrap,
  useOperatorError,
} from "@/components/admin/Console";
import { ReasonDialog } from "@/components/admin/ReasonDialog";
import styles from "@/components/admin/admin.module.css";
import { userName, userState } from "@/components/admin/labels";
import { useMoney } from "@/components/account/format";
import { kindLabel } from "@/components/tasks/labels";
import { ErrorBox, ErrorWithRetry, StatusBadge } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useFormat, useI18n } from "@/lib/i18n";
import type { Operator } from "@/lib/operator";

type Detail = Schemas["UserDetailOut"];
type Action = "suspend" | "restore" | "signOut" | "delete";
const ROLES = ["user", "support", "admin"] as const;

function newKey(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `adj-${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

function AdjustCredits({ userId, onDone }: { userId: string; onDone: (out: Schemas["CreditAdjustmentOut"]) => void }) {
  const { t } = useI18n();
  const id = useId();
  const translate = useOperatorError();
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [tried, setTried] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // One key per intended adjustment: sending it again after a lost answer cannot apply it twice.
  const key = useRef(newKey());

  const parsed = /^\s*[-+−]?\d+\s*$/.test(amount) ? Number.parseInt(amount.replace("−", "-"), 10) : NaN;
  const amountInvalid = !Number.isFinite(parsed) || parsed === 0;
  const reasonInvalid = reason.trim().length < 3;

  async function submit(event: FormEvent) {
    event.preventDefault();
    setTried(true);
    if (amountInvalid || reasonInvalid) return;
    setBusy(true);
    setError(null);
    try {
      const api = await getApi();
      const out = await unwrap(
        api.POST("/api/admin/users/{user_id}/credits", {
          params: { path: { user_id: userId } },
          body: { amount: parsed, reason: reason.trim(), idempotency_key: key.current },
        }),
      );
      key.current = newKey();
      setAmount("");
      setReason("");
      setTried(false);
      onDone(out);
    } catch (caught) {
      setError(translate(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{t("admin.user.adjust")}</h2>
      <div className="field">
        <label htmlFor={`${id}-amount`}>{t("admin.user.amount")}</label>
        <p id={`${id}-amount-hint`} className="hint">
          {t("admin.user.amount.hint")}
        </p>
        <input
          id={`${id}-amount`}
          type="text"
          inputMode="numeric"
          autoComplete="off"
          value={amount}
          aria-invalid={(tried && amountInvalid) || undefined}
          aria-describedby={tried && amountInvalid ? `${id}-amount-hint ${id}-amount-error` : `${id}-amount-hint`}
          onChange={(event) => setAmount(event.target.value)}
        />
        {tried && amountInvalid && (
          <p id={`${id}-amount-error`} className={styles.fieldError}>
            {t("admin.user.amount.invalid")}
          </p>
        )}
      </div>
      <div className="field">
        <label htmlFor={`${id}-reason`}>{t("admin.reason")}</label>
        <p id={`${id}-reason-hint`} className="hint">
          {t("admin.reason.hint")}
        </p>
        <textarea
          id={`${id}-reason`}
          className={styles.textarea}
          value={reason}
          maxLength={1000}
          aria-invalid={(tried && reasonInvalid) || undefined}
          aria-describedby={tried && reasonInvalid ? `${id}-reason-hint ${id}-reason-error` : `${id}-reason-hint`}
          onChange={(event) => setReason(event.target.value)}
        />
        {tried && reasonInvalid && (
          <p id={`${id}-reason-error`} className={styles.fieldError}>
            {t("admin.reason.required")}
          </p>
        )}
      </div>
      <ErrorBox error={error} />
      <button type="submit" className="button" disabled={busy}>
        {busy ? t("admin.working") : t("admin.user.adjustButton")}
      </button>
    </form>
  );
}

function RoleForm({ detail, onDone }: { detail: Detail; onDone: (user: Schemas["UserSummaryOut"]) => void }) {
  const { t } = useI18n();
  const id = useId();
  const [role, setRole] = useState<(typeof ROLES)[number]>(
    (ROLES as readonly string[]).includes(detail.user.role) ? (detail.user.role as (typeof ROLES)[number]) : "user",
  );
  const [asking, setAsking] = useState(false);

  return (
    <section aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{t("admin.user.roleTitle")}</h2>
      <div className="field">
        <label htmlFor={`${id}-role`}>{t("admin.col.role")}</label>
        <select id={`${id}-role`} value={role} onChange={(event) => setRole(event.target.value as (typeof ROLES)[number])}>
          {ROLES.map((value) => (
            <option key={value} value={value}>
              {roleLabel(t, value)}
            </option>
          ))}
        </select>
      </div>
      <button type="button" className="button secondary" disabled={role === detail.user.role} onClick={() => setAsking(true)}>
        {t("admin.user.roleButton")}
      </button>
      <ReasonDialog
        open={asking}
        title={t("admin.user.roleButton")}
        confirmLabel={t("admin.user.roleButton")}
        tone="primary"
        onClose={() => setAsking(false)}
        onConfirm={async (reason) => {
          const api = await getApi();
          onDone(
            await unwrap(
              api.PUT("/api/admin/users/{user_id}/role", {
                params: { path: { user_id: detail.user.id } },
                body: { role, reason },
              }),
            ),
          );
        }}
      >
        <p>{t("admin.user.role.confirm", { name: userName(detail.user), role: roleLabel(t, role) })}</p>
      </ReasonDialog>
    </section>
  );
}

function UserDetail({ userId, operator }: { userId: string; operator: Operator }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const { money, signed } = useMoney();
  const [detail, setDetail] = useState<Detail | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [action, setAction] = useState<Action | null>(null);
  const isAdmin = operator.role === "admin";

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      setDetail(await unwrap(api.GET("/api/admin/users/{user_id}", { params: { path: { user_id: userId } } })));
    } catch (caught) {
      setError(caught);
    }
  }, [userId]);

  useEffect(() => {
    void load();
  }, [load]);

  if (error && !detail) {
    return (
      <>
        <h1>{t("admin.users.title")}</h1>
        <ErrorWithRetry error={error} onRetry={() => void load()} />
        <p>
          <Link href="/admin/users/">{t("admin.user.back")}</Link>
        </p>
      </>
    );
  }
  if (!detail) {
    return (
      <p className="muted" role="status">
        {t("common.loading")}
      </p>
    );
  }

  const user = detail.user;
  const name = userName(user);

  async function run(which: Action, reason: string) {
    const api = await getApi();
    const path = { params: { path: { user_id: user.id } }, body: { reason } };
    if (which === "signOut") {
      const out = await unwrap(api.POST("/api/admin/users/{user_id}/sign-out", path));
      setNotice(t("admin.user.signedOut", { n: out.sessions_ended }));
    } else {
      const call =
        which === "suspend"
          ? api.POST("/api/admin/users/{user_id}/suspend", path)
          : which === "restore"
            ? api.POST("/api/admin/users/{user_id}/restore", path)
            : api.POST("/api/admin/users/{user_id}/delete", path);
      await unwrap(call);
      setNotice(t("admin.user.done"));
    }
    await load();
  }

  const dialogs: Record<Action, { title: string; body: string; confirm: string }> = {
    suspend: { title: t("admin.user.suspend.title", { name }), body: t("admin.user.suspend.body"), confirm: t("admin.user.suspend") },
    restore: { title: t("admin.user.restore.title", { name }), body: t("admin.user.restore.body"), confirm: t("admin.user.restore") },
    signOut: { title: t("admin.user.signOut.title", { name }), body: t("admin.user.signOut.body"), confirm: t("admin.user.signOut") },
    delete: { title: t("admin.user.delete.title", { name }), body: t("admin.user.delete.body"), confirm: t("admin.user.delete") },
  };

  return (
    <>
      <p>
        <Link href="/admin/users/">{t("admin.user.back")}</Link>
      </p>
      <h1>{t("admin.user.title", { name })}</h1>
      <div role="status" aria-live="polite">
        {notice && <p className="alert alert-success" data-testid="console-notice">{notice}</p>}
      </div>
      <ErrorBox error={error} />

      <div className={styles.panels}>
        <section className="card" aria-labelledby="user-profile">
          <h2 id="user-profile">{t("admin.user.profile")}</h2>
          <dl className={styles.facts}>
            <dt>{t("admin.user.id")}</dt>
            <dd className="mono" data-testid="user-id">{user.id}</dd>
            <dt>{t("admin.col.phone")}</dt>
            <dd>{user.phone ?? "—"}</dd>
            <dt>{t("admin.col.email")}</dt>
            <dd>{user.email ?? "—"}</dd>
            <dt>{t("admin.col.role")}</dt>
            <dd data-testid="user-role">{roleLabel(t, user.role)}</dd>
            <dt>{t("admin.col.state")}</dt>
            <dd data-testid="user-state">{userState(t, user)}</dd>
            <dt>{t("admin.col.created")}</dt>
            <dd>{date(user.created_at)}</dd>
            <dt>{t("admin.col.lastLogin")}</dt>
            <dd>{date(user.last_login_at)}</dd>
          </dl>
          <p>
            <Link href={`/admin/tasks/?user_id=${user.id}`}>{t("admin.user.allTasks")}</Link>
            {" · "}
            <Link href={`/admin/audit/?target_type=user&target_id=${user.id}`}>{t("admin.user.auditTrail")}</Link>
          </p>
        </section>
        <section className="card" aria-labelledby="user-balance">
          <h2 id="user-balance">{t("admin.user.balance")}</h2>
          <dl className={styles.facts}>
            <dt>{t("common.balance")}</dt>
            <dd data-testid="admin-balance">{number(user.credits)}</dd>
            <dt>{t("common.reserved")}</dt>
            <dd>{number(user.credits_reserved)}</dd>
            <dt>{t("common.available")}</dt>
            <dd data-testid="admin-available">{number(detail.available)}</dd>
            <dt>{t("admin.user.earned")}</dt>
            <dd>{number(detail.total_earned)}</dd>
            <dt>{t("admin.user.spentAll")}</dt>
            <dd>{number(detail.total_spent)}</dd>
          </dl>
        </section>
      </div>

      <div className={styles.panels}>
        <section className="card">
          <AdjustCredits
            userId={user.id}
            onDone={(out) => {
              setNotice(out.applied ? t("admin.user.adjusted", { n: out.credits }) : t("admin.user.adjustedAgain", { n: out.credits }));
              void load();
            }}
          />
        </section>
        <section className="card" aria-labelledby="user-actions">
          {isAdmin ? (
            <>
              <RoleForm
                key={user.role}
                detail={detail}
                onDone={(changed) => {
                  setNotice(t("admin.user.roleChanged", { role: roleLabel(t, changed.role) }));
                  void load();
                }}
              />
              <h2 id="user-actions">{t("admin.user.actions")}</h2>
              <div className="row">
                {user.suspended_at ? (
                  <button type="button" className="button secondary" onClick={() => setAction("restore")} disabled={!!user.deleted_at}>
                    {t("admin.user.restore")}
                  </button>
                ) : (
                  <button type="button" className="button secondary" onClick={() => setAction("suspend")} disabled={!!user.deleted_at}>
                    {t("admin.user.suspend")}
                  </button>
                )}
                <button type="button" className="button secondary" onClick={() => setAction("signOut")} disabled={!!user.deleted_at}>
                  {t("admin.user.signOut")}
                </button>
                <button type="button" className="button danger" onClick={() => setAction("delete")} disabled={!!user.deleted_at}>
                  {t("admin.user.delete")}
                </button>
              </div>
            </>
          ) : (
            <>
              <h2 id="user-actions">{t("admin.user.actions")}</h2>
              <p className="muted">{t("admin.adminsOnly")}</p>
            </>
          )}
        </section>
      </div>

      <ReasonDialog
        open={action !== null}
        title={action ? dialogs[action].title : ""}
        confirmLabel={action ? dialogs[action].confirm : ""}
        tone={action === "restore" ? "primary" : "danger"}
        onClose={() => setAction(null)}
        onConfirm={(reason) => (action ? run(action, reason) : Promise.resolve())}
      >
        <p>{action ? dialogs[action].body : ""}</p>
      </ReasonDialog>

      <h2 id="ledger">{t("admin.user.ledger")}</h2>
      {detail.ledger.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <TableWrap label={t("admin.user.ledger")}>
          <table data-testid="user-ledger">
            <thead>
              <tr>
                <th scope="col">{t("admin.col.when")}</th>
                <th scope="col">{t("admin.col.delta")}</th>
                <th scope="col">{t("admin.col.kind")}</th>
                <th scope="col">{t("admin.col.balanceAfter")}</th>
                <th scope="col">{t("admin.col.note")}</th>
              </tr>
            </thead>
            <tbody>
              {detail.ledger.map((entry) => (
                <tr key={entry.id}>
                  <td className={styles.nowrap}>{date(entry.created_at)}</td>
                  <td className={styles.nowrap}>{signed(entry.delta)}</td>
                  <td>{entry.kind}</td>
                  <td>{number(entry.balance_after)}</td>
                  <td>{entry.note ?? entry.reference ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <h2>{t("admin.user.tasks")}</h2>
      {detail.tasks.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <TableWrap label={t("admin.user.tasks")}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("admin.col.task")}</th>
                <th scope="col">{t("admin.col.kind")}</th>
                <th scope="col">{t("admin.col.model")}</th>
                <th scope="col">{t("admin.col.channel")}</th>
                <th scope="col">{t("admin.col.status")}</th>
                <th scope="col">{t("admin.col.charged")}</th>
                <th scope="col">{t("admin.col.refunded")}</th>
                <th scope="col">{t("admin.col.created")}</th>
              </tr>
            </thead>
            <tbody>
              {detail.tasks.map((task) => (
                <tr key={task.task_id}>
                  <td className="mono">
                    <Link href={`/admin/task/?id=${task.task_id}`} title={task.task_id}>
                      {shortId(task.task_id)}
                    </Link>
                  </td>
                  <td>{kindLabel(t, task.task_type)}</td>
                  <td>{task.model}</td>
                  <td>{task.channel ?? "—"}</td>
                  <td>
                    <StatusBadge status={task.status} />
                  </td>
                  <td>{number(task.credits_charged)}</td>
                  <td>{number(task.credits_refunded)}</td>
                  <td className={styles.nowrap}>{date(task.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <h2>{t("admin.user.payments")}</h2>
      <p>
        <Link href={`/admin/payments/?user_id=${user.id}`}>{t("admin.payment.userPayments")}</Link>
      </p>
      {detail.payments.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <TableWrap label={t("admin.user.payments")}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("admin.col.payment")}</th>
                <th scope="col">{t("admin.col.gateway")}</th>
                <th scope="col">{t("admin.col.status")}</th>
                <th scope="col">{t("admin.col.amount")}</th>
                <th scope="col">{t("admin.col.credits")}</th>
                <th scope="col">{t("admin.col.created")}</th>
                <th scope="col">{t("admin.col.paid")}</th>
              </tr>
            </thead>
            <tbody>
              {detail.payments.map((payment) => (
                <tr key={payment.payment_id} data-payment-id={payment.payment_id}>
                  <td className="mono">
                    <Link href={`/admin/payment/?id=${payment.payment_id}`} title={payment.payment_id}>
                      {shortId(payment.payment_id)}
                    </Link>
                  </td>
                  <td>{providerLabel(t, payment.provider)}</td>
                  <td>{paymentStatusLabel(t, payment.status)}</td>
                  <td className={styles.nowrap}>
                    {money(payment.amount_minor / 10 ** minorDigits(payment.currency), payment.currency)}
                  </td>
                  <td>{number(payment.credits)}</td>
                  <td className={styles.nowrap}>{date(payment.created_at)}</td>
                  <td className={styles.nowrap}>{date(payment.paid_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <h2>{t("admin.user.sessions")}</h2>
      {detail.sessions.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <TableWrap label={t("admin.user.sessions")}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("admin.col.method")}</th>
                <th scope="col">{t("admin.col.created")}</th>
                <th scope="col">{t("admin.col.expires")}</th>
                <th scope="col">{t("admin.col.ip")}</th>
                <th scope="col">{t("admin.col.agent")}</th>
              </tr>
            </thead>
            <tbody>
              {detail.sessions.map((session) => (
                <tr key={session.id}>
                  <td>{session.method}</td>
                  <td className={styles.nowrap}>{date(session.created_at)}</td>
                  <td className={styles.nowrap}>{date(session.expires_at)}</td>
                  <td>{session.ip ?? "—"}</td>
                  <td className={styles.small}>{session.user_agent ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <h2>{t("admin.user.keys")}</h2>
      {detail.api_keys.length === 0 ? (
        <p className="muted">{t("common.none")}</p>
      ) : (
        <TableWrap label={t("admin.user.keys")}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("admin.col.name")}</th>
                <th scope="col">{t("admin.col.prefix")}</th>
                <th scope="col">{t("admin.col.created")}</th>
                <th scope="col">{t("admin.col.lastUsed")}</th>
              </tr>
            </thead>
            <tbody>
              {detail.api_keys.map((key) => (
                <tr key={key.id}>
                  <td>{key.name}</td>
                  <td className="mono">{key.prefix}…</td>
                  <td className={styles.nowrap}>{date(key.created_at)}</td>
                  <td className={styles.nowrap}>{date(key.last_used_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </>
  );
}

function UserFromQuery({ operator }: { operator: Operator }) {
  const { t } = useI18n();
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <>
        <h1>{t("admin.users.title")}</h1>
        <p>{t("admin.user.missing")}</p>
        <p>
          <Link href="/admin/users/">{t("admin.user.back")}</Link>
        </p>
      </>
    );
  }
  return <UserDetail key={id} userId={id} operator={operator} />;
}

export default function AdminUserPage() {
  return (
    <ConsolePage>
      {(operator) => (
        <Suspense fallback={null}>
          <UserFromQuery operator={operator} />
        </Suspense>
      )}
    </ConsolePage>
  );
}

"use client";
// /admin/codes/batch/?id=<batch_id>: one batch of redemption codes with each code and how often it
// has been used; its codes as CSV (fetched with the token, saved from a Blob); and for admins,
// disabling the batch or one code, each with a reason.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useState } from "react";

import { ConsolePage, TableWrap, useOperatorError } from "@/components/admin/Console";
import { ReasonDialog } from "@/components/admin/ReasonDialog";
import styles from "@/components/admin/admin.module.css";
import { ErrorBox, ErrorWithRetry } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useFormat, useI18n } from "@/lib/i18n";
import type { Operator } from "@/lib/operator";

type Batch = Schemas["BatchWithCodes"];
type Code = Schemas["CodeOut"];

function BatchDetail({ batchId, operator }: { batchId: string; operator: Operator }) {
  const { t } = useI18n();
  const { date, number } = useFormat();
  const isAdmin = operator.role === "admin";
  const translate = useOperatorError();
  const [detail, setDetail] = useState<Batch | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const [disablingBatch, setDisablingBatch] = useState(false);
  const [disablingCode, setDisablingCode] = useState<Code | null>(null);
  const [downloading, setDownloading] = useState(false);
  const [csvError, setCsvError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      const api = await getApi();
      setDetail(await unwrap(api.GET("/api/admin/codes/batches/{batch_id}", { params: { path: { batch_id: batchId } } })));
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [batchId]);

  useEffect(() => {
    void load();
  }, [load]);

  async function downloadCsv() {
    setDownloading(true);
    setCsvError(null);
    try {
      // The token lives with the app, not in a cookie: fetch the file, then save it from a Blob.
      const api = await getApi();
      const { data: blob, response } = await api.GET("/api/admin/codes/batches/{batch_id}/codes.csv", {
        params: { path: { batch_id: batchId } },
        parseAs: "blob",
      });
      if (!response.ok || !blob) throw new Error(`HTTP ${response.status}`);
      const disposition = response.headers.get("Content-Disposition") ?? "";
      const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? `codes-${batchId}.csv`;
      const url = URL.createObjectURL(blob as Blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (caught) {
      setCsvError(caught);
    } finally {
      setDownloading(false);
    }
  }

  if (!detail) {
    return error ? (
      <>
        <h1>{t("admin.codes.title")}</h1>
        <ErrorWithRetry error={translate(error)} onRetry={() => void load()} />
        <p>
          <Link href="/admin/codes/">{t("admin.batch.back")}</Link>
        </p>
      </>
    ) : (
      <p className="muted" role="status">
        {t("common.loading")}
      </p>
    );
  }

  const { batch, codes } = detail;

  return (
    <>
      <p>
        <Link href="/admin/codes/">{t("admin.batch.back")}</Link>
      </p>
      <h1>{t("admin.batch.title", { id: batch.id.slice(0, 8) })}</h1>
      <div role="status" aria-live="polite">
        {notice && (
          <p className="alert alert-success" data-testid="console-notice">
            {notice}
          </p>
        )}
      </div>
      <div className="row">
        <button type="button" className="button secondary" disabled={downloading} onClick={() => void downloadCsv()}>
          {downloading ? t("admin.batch.csvBusy") : t("admin.batch.csv")}
        </button>
        {isAdmin && !batch.disabled_at && (
          <button type="button" className="button danger" onClick={() => setDisablingBatch(true)}>
            {t("admin.batch.disable")}
          </button>
        )}
      </div>
      <ErrorBox error={csvError} />

      <section className="card" aria-labelledby="batch-facts">
        <h2 id="batch-facts">{t("admin.codes.batch")}</h2>
        <dl className={styles.facts} data-testid="batch-facts">
          <dt>{t("admin.user.id")}</dt>
          <dd className="mono">{batch.id}</dd>
          <dt>{t("admin.codes.state")}</dt>
          <dd data-testid="batch-state" className={batch.disabled_at ? styles["state-off"] : styles["state-on"]}>
            {batch.disabled_at ? t("admin.codes.disabled") : t("admin.codes.active")}
          </dd>
          <dt>{t("admin.codes.credits")}</dt>
          <dd>{number(batch.credits)}</dd>
          <dt>{t("admin.codes.count")}</dt>
          <dd>{number(batch.count)}</dd>
          <dt>{t("admin.codes.maxUses")}</dt>
          <dd>{number(batch.max_uses)}</dd>
          <dt>{t("admin.codes.codesUsed")}</dt>
          <dd data-testid="batch-codes-used">{number(batch.codes_used)}</dd>
          <dt>{t("admin.codes.uses")}</dt>
          <dd data-testid="batch-uses">{number(batch.uses)}</dd>
          <dt>{t("admin.codes.expires")}</dt>
          <dd>{batch.expires_at ? date(batch.expires_at) : t("admin.codes.never")}</dd>
          <dt>{t("admin.codes.note")}</dt>
          <dd>{batch.note ?? "—"}</dd>
          <dt>{t("admin.codes.createdBy")}</dt>
          <dd>{batch.created_by}</dd>
          <dt>{t("admin.col.created")}</dt>
          <dd>{date(batch.created_at)}</dd>
          {batch.disabled_at && (
            <>
              <dt>{t("admin.codes.disabled")}</dt>
              <dd>{date(batch.disabled_at)}</dd>
            </>
          )}
        </dl>
        {!isAdmin && <p className="muted">{t("admin.adminsOnly")}</p>}
      </section>

      <h2>{t("admin.batch.codes")}</h2>
      <TableWrap label={t("admin.batch.codes")}>
        <table data-testid="batch-codes">
          <thead>
            <tr>
              <th scope="col">{t("admin.batch.code")}</th>
              <th scope="col">{t("admin.codes.uses")}</th>
              <th scope="col">{t("admin.codes.state")}</th>
              <th scope="col">{t("admin.col.created")}</th>
              {isAdmin && (
                <th scope="col">
                  <span className="visually-hidden">{t("admin.batch.disable")}</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {codes.map((code) => {
              const off = !!code.disabled_at || !!batch.disabled_at;
              return (
                <tr key={code.id} data-code={code.code}>
                  <td className="mono">{code.code}</td>
                  <td>{number(code.uses)}</td>
                  <td className={off ? styles["state-off"] : styles["state-on"]}>
                    {off ? t("admin.codes.disabled") : t("admin.codes.active")}
                  </td>
                  <td className={styles.nowrap}>{date(code.created_at)}</td>
                  {isAdmin && (
                    <td>
                      {!off && (
                        <button
                          type="button"
                          className="button secondary"
                          aria-label={t("admin.batch.disableCode", { code: code.code })}
                          onClick={() => setDisablingCode(code)}
                        >
                          {t("admin.batch.disableOne")}
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableWrap>

      <ReasonDialog
        open={disablingBatch}
        title={t("admin.batch.disable.title")}
        confirmLabel={t("admin.batch.disable")}
        onClose={() => setDisablingBatch(false)}
        onConfirm={async (reason) => {
          const api = await getApi();
          await unwrap(
            api.POST("/api/admin/codes/batches/{batch_id}/disable", { params: { path: { batch_id: batch.id } }, body: { reason } }),
          );
          setNotice(t("admin.batch.disabledNotice"));
          await load();
        }}
      >
        <p>{t("admin.batch.disable.body")}</p>
      </ReasonDialog>

      <ReasonDialog
        open={disablingCode !== null}
        title={t("admin.batch.disableCode.title", { code: disablingCode?.code ?? "" })}
        confirmLabel={t("admin.batch.disableCode", { code: disablingCode?.code ?? "" })}
        onClose={() => setDisablingCode(null)}
        onConfirm={async (reason) => {
          if (!disablingCode) return;
          const api = await getApi();
          const out = await unwrap(
            api.POST("/api/admin/codes/{code_id}/disable", { params: { path: { code_id: disablingCode.id } }, body: { reason } }),
          );
          setNotice(t("admin.batch.codeDisabled", { code: out.code }));
          await load();
        }}
      >
        <p>{t("admin.batch.disableCode.body")}</p>
      </ReasonDialog>
    </>
  );
}

function BatchFromQuery({ operator }: { operator: Operator }) {
  const { t } = useI18n();
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <>
        <h1>{t("admin.codes.title")}</h1>
        <p>{t("admin.batch.missing")}</p>
        <p>
          <Link href="/admin/codes/">{t("admin.batch.back")}</Link>
        </p>
      </>
    );
  }
  return <BatchDetail key={id} batchId={id} operator={operator} />;
}

export default function AdminBatchPage() {
  return (
    <ConsolePage>
      {(operator) => (
        <Suspense fallback={null}>
          <BatchFromQuery operator={operator} />
        </Suspense>
      )}
    </ConsolePage>
  );
}

"use client";
// /admin/channels/: each model's routing channels with the circuit breaker's state, the last hour's
// attempts, error rate and median submit time; admins disable and enable a channel with a reason.
import { useCallback, useEffect, useState } from "react";

import { ConsolePage, TableWrap } from "@/components/admin/Console";
import { ReasonDialog } from "@/components/admin/ReasonDialog";
import styles from "@/components/admin/admin.module.css";
import { ErrorWithRetry } from "@/components/ui";
import { getApi, unwrap, type Schemas } from "@/lib/api/client";
import { useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import type { Operator } from "@/lib/operator";

type Channel = Schemas["ChannelOut"];

function Channels({ operator }: { operator: Operator }) {
  const { t, locale } = useI18n();
  const tag = locale === "zh" ? "zh-CN" : "en-US";
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [switching, setSwitching] = useState<Channel | null>(null);
  const [notice, setNotice] = useState("");
  const isAdmin = operator.role === "admin";

  const load = useCallback(async () => {
    setError(null);
    try {
      const api = await getApi();
      setChannels((await unwrap(api.GET("/api/admin/channels"))).channels);
    } catch (caught) {
      setError(caught);
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const percent = (value: number) => (value * 100).toLocaleString(tag, { maximumFractionDigits: 1 }) + "%";

  return (
    <>
      <h1>{t("admin.channels.title")}</h1>
      <p className="muted">{t("admin.channels.intro")}</p>
      <div role="status" aria-live="polite">
        {notice && <p className="alert alert-success" data-testid="console-notice">{notice}</p>}
      </div>
      {error ? (
        <ErrorWithRetry error={error} onRetry={() => void load()} />
      ) : !channels ? (
        <p className="muted" role="status">
          {t("common.loading")}
        </p>
      ) : channels.length === 0 ? (
        <p>{t("admin.empty")}</p>
      ) : (
        <TableWrap label={t("admin.channels.caption")}>
          <table data-testid="channels">
            <caption className="visually-hidden">{t("admin.channels.caption")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("admin.col.model")}</th>
                <th scope="col">{t("admin.col.channel")}</th>
                <th scope="col">{t("admin.channels.state")}</th>
                <th scope="col">{t("admin.channels.breaker")}</th>
                <th scope="col">{t("admin.channels.attempts")}</th>
                <th scope="col">{t("admin.channels.errorRate")}</th>
                <th scope="col">{t("admin.channels.latency")}</th>
                <th scope="col">{t("admin.channels.open")}</th>
                <th scope="col">{t("admin.channels.lastError")}</th>
                {isAdmin && (
                  <th scope="col">
                    <span className="visually-hidden">{t("admin.user.actions")}</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {channels.map((channel) => (
                <tr key={`${channel.model}/${channel.channel}`} data-channel={channel.channel} data-model={channel.model}>
                  <td>{channel.model}</td>
                  <th scope="row">
                    {channel.channel}
                    <div className={`muted ${styles.small}`}>
                      {channel.adapter} · {channel.vendor_model}
                    </div>
                  </th>
                  <td data-testid="channel-state">
                    <span className={channel.disabled ? styles["state-off"] : styles["state-on"]}>
                      {channel.disabled ? t("admin.channels.disabled") : t("admin.channels.enabled")}
                    </span>
                    {!channel.configured && <div className={styles.small}>{t("admin.channels.notConfigured")}</div>}
                    {!channel.enabled_in_catalog && <div className={styles.small}>{t("admin.channels.offInCatalog")}</div>}
                  </td>
                  <td>
                    <span className={`badge ${styles[`breaker-${channel.breaker}`] ?? ""}`}>
                      {t(`admin.breaker.${channel.breaker}` as MessageKey)}
                    </span>
                    {channel.failures_in_a_row > 0 && <div className={styles.small}>×{channel.failures_in_a_row}</div>}
                  </td>
                  <td>{channel.attempts_last_hour.toLocaleString(tag)}</td>
                  <td>{percent(channel.error_rate_last_hour)}</td>
                  <td className={styles.nowrap}>
                    {channel.median_submit_ms === null || channel.median_submit_ms === undefined
                      ? "—"
                      : `${Math.round(channel.median_submit_ms).toLocaleString(tag)} ms`}
                  </td>
                  <td>
                    {channel.open_tasks}
                    {channel.max_concurrency ? ` / ${channel.max_concurrency}` : ""}
                  </td>
                  <td className={styles.small}>{channel.last_error ?? "—"}</td>
                  {isAdmin && (
                    <td>
                      <button
                        type="button"
                        className={channel.disabled ? "button" : "button secondary"}
                        aria-label={t(channel.disabled ? "admin.channels.enable.named" : "admin.channels.disable.named", {
                          channel: channel.channel,
                          model: channel.model,
                        })}
                        onClick={() => setSwitching(channel)}
                      >
                        {channel.disabled ? t("admin.channels.enable") : t("admin.channels.disable")}
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}

      <ReasonDialog
        open={switching !== null}
        title={t(switching?.disabled ? "admin.channels.enable.title" : "admin.channels.disable.title", {
          channel: switching?.channel ?? "",
        })}
        confirmLabel={switching?.disabled ? t("admin.channels.enable") : t("admin.channels.disable")}
        tone={switching?.disabled ? "primary" : "danger"}
        onClose={() => setSwitching(null)}
        onConfirm={async (reason) => {
          if (!switching) return;
          const api = await getApi();
          const path = { params: { path: { channel_id: switching.channel } }, body: { reason } };
          const out = await unwrap(
            switching.disabled
              ? api.POST("/api/admin/channels/{channel_id}/enable", path)
              : api.POST("/api/admin/channels/{channel_id}/disable", path),
          );
          setChannels(out.channels);
          setNotice(t(switching.disabled ? "admin.channels.nowEnabled" : "admin.channels.nowDisabled", { channel: switching.channel }));
        }}
      >
        <p>{switching?.disabled ? t("admin.channels.enable.body") : t("admin.channels.disable.body")}</p>
      </ReasonDialog>
    </>
  );
}

export default function AdminChannelsPage() {
  return <ConsolePage>{(operator) => <Channels operator={operator} />}</ConsolePage>;
}

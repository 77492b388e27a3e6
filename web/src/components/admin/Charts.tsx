"use client";
// The overview's charts (recharts): one card per figure, each with its numbers as a table behind
// a disclosure for screen readers and for copying.
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

import { useI18n } from "@/lib/i18n";

import styles from "./admin.module.css";

/** Colours with at least 4.5:1 against white (the legend's text takes the series colour). */
export const COLOURS = ["#0b5fd6", "#b42318", "#116329", "#8a4b00", "#6f42c1", "#57606a", "#0e6e7e", "#a1246b"];

export interface Series {
  key: string;
  label: string;
  colour?: string;
}

export type Row = { day: string } & Record<string, number | string | null>;

export function ChartCard({
  title,
  rows,
  series,
  kind,
  stacked = false,
  format = (value) => String(value),
  integer = false,
  domain,
  testId,
}: {
  title: string;
  rows: Row[];
  series: Series[];
  kind: "line" | "bar";
  stacked?: boolean;
  format?: (value: number) => string;
  /** Counts: no fractional ticks on the axis. */
  integer?: boolean;
  /** The value axis' range, when the data alone would mislead (rates: 0 to 1). */
  domain?: [number, number];
  testId: string;
}) {
  const { t } = useI18n();
  const tableLabel = t("admin.overview.table", { title });
  const tick = { fontSize: 12, fill: "#57606a" };
  const axisDay = (day: string) => day.slice(5); // MM-DD
  const tooltipFormat = (value: unknown) => (typeof value === "number" ? format(value) : String(value ?? "—"));
  const common = (
    <>
      <CartesianGrid strokeDasharray="3 3" stroke="#d0d7de" />
      <XAxis dataKey="day" tickFormatter={axisDay} tick={tick} minTickGap={16} />
      <YAxis tick={tick} width={48} tickFormatter={(value: number) => format(value)} allowDecimals={!integer} domain={domain} />
      <Tooltip formatter={tooltipFormat} />
      <Legend />
    </>
  );
  return (
    <section className={styles.chartCard} aria-label={title} data-testid={testId}>
      <h2>{title}</h2>
      <div className={styles.chart}>
        <ResponsiveContainer width="100%" height="100%" minWidth={0}>
          {kind === "line" ? (
            <LineChart data={rows} accessibilityLayer={false}>
              {common}
              {series.map((item, index) => (
                <Line
                  key={item.key}
                  type="linear"
                  dataKey={item.key}
                  name={item.label}
                  stroke={item.colour ?? COLOURS[index % COLOURS.length]}
                  strokeWidth={2}
                  dot={false}
                  connectNulls
                  isAnimationActive={false}
                />
              ))}
            </LineChart>
          ) : (
            <BarChart data={rows} accessibilityLayer={false}>
              {common}
              {series.map((item, index) => (
                <Bar
                  key={item.key}
                  dataKey={item.key}
                  name={item.label}
                  fill={item.colour ?? COLOURS[index % COLOURS.length]}
                  stackId={stacked ? "all" : undefined}
                  isAnimationActive={false}
                />
              ))}
            </BarChart>
          )}
        </ResponsiveContainer>
      </div>
      <details>
        <summary>{tableLabel}</summary>
        <div className="table-wrap" tabIndex={0} role="region" aria-label={tableLabel}>
          <table>
            <caption className="visually-hidden">{title}</caption>
            <thead>
              <tr>
                <th scope="col">{t("admin.overview.day")}</th>
                {series.map((item) => (
                  <th key={item.key} scope="col">
                    {item.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.day}>
                  <th scope="row" className={styles.nowrap}>
                    {row.day}
                  </th>
                  {series.map((item) => {
                    const value = row[item.key];
                    return <td key={item.key}>{typeof value === "number" ? format(value) : "—"}</td>;
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </section>
  );
}

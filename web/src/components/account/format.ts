// Money and signed numbers in the chosen language: amounts always with their currency.
import { useMemo } from "react";

import { useI18n } from "@/lib/i18n";

export function useMoney() {
  const { locale } = useI18n();
  const tag = locale === "zh" ? "zh-CN" : "en-US";
  return useMemo(() => {
    const format = (amount: number, currency: string, digits?: number): string => {
      const fixed = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
      try {
        return new Intl.NumberFormat(tag, { style: "currency", currency, ...fixed }).format(amount);
      } catch {
        // A code Intl does not take: the number and the code as the server gave them.
        const number = new Intl.NumberFormat(tag, { minimumFractionDigits: digits ?? 2, ...fixed }).format(amount);
        return `${number} ${currency}`;
      }
    };
    return {
      /** "CN¥50.00" (en) or "¥50.00" (zh): the amount exactly, with its currency. */
      money(amount: number, currency: string): string {
        return format(amount, currency);
      },
      /** A per-unit price with more decimals (¥0.091). */
      unitPrice(amount: number, currency: string): string {
        return format(amount, currency, 3);
      },
      /** "+100" or "−20" (a true minus sign), "0" for nothing. */
      signed(value: number): string {
        const text = Math.abs(value).toLocaleString(tag);
        if (value > 0) return `+${text}`;
        if (value < 0) return `−${text}`;
        return "0";
      },
    };
  }, [tag]);
}

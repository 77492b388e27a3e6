"use client";
// Chinese and English: the browser's language picks one the first time, the switch remembers
// the choice.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

import { messages, type MessageKey } from "./messages";

export type Locale = "en" | "zh";
export const LOCALES: Locale[] = ["zh", "en"];
const STORAGE_KEY = "vidgate.locale";

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

interface I18n {
  locale: Locale;
  setLocale: (locale: Locale) => void;
  t: Translate;
}

const I18nContext = createContext<I18n | null>(null);

function browserLocale(): Locale {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "zh") return saved;
  const languages = navigator.languages?.length ? navigator.languages : [navigator.language];
  return languages.some((language) => language?.toLowerCase().startsWith("zh")) ? "zh" : "en";
}

export function format(template: string, vars?: Record<string, string | number>): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (match, name: string) =>
    name in vars ? String(vars[name]) : match,
  );
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [locale, setLocaleState] = useState<Locale>("en");

  useEffect(() => {
    setLocaleState(browserLocale());
  }, []);

  useEffect(() => {
    document.documentElement.lang = locale === "zh" ? "zh-CN" : "en";
  }, [locale]);

  const setLocale = useCallback((next: Locale) => {
    localStorage.setItem(STORAGE_KEY, next);
    setLocaleState(next);
  }, []);

  const value = useMemo<I18n>(() => {
    const table = messages[locale];
    return {
      locale,
      setLocale,
      t: (key, vars) => format(table[key] ?? messages.en[key] ?? key, vars),
    };
  }, [locale, setLocale]);

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error("useI18n outside I18nProvider");
  return value;
}

/** Dates and numbers in the chosen language. */
export function useFormat() {
  const { locale } = useI18n();
  const tag = locale === "zh" ? "zh-CN" : "en-US";
  return useMemo(
    () => ({
      date: (iso: string | null | undefined) =>
        iso ? new Date(iso).toLocaleString(tag, { dateStyle: "medium", timeStyle: "short" }) : "—",
      number: (value: number) => value.toLocaleString(tag),
    }),
    [tag],
  );
}

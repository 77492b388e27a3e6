"use client";
// Console list filters kept in the address (?status=FAILED&page=2), so Back and shared links keep
// them: the current values, and a way to go to other ones (a new filter starts again at page 1).
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useMemo } from "react";

export function useFilters<K extends string>(keys: readonly K[]) {
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const search = params.toString();
  const values = useMemo(() => {
    const current = new URLSearchParams(search);
    return Object.fromEntries(keys.map((key) => [key, current.get(key) ?? ""])) as Record<K, string>;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [search]);
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);

  const go = useCallback(
    (next: Partial<Record<K, string>>, nextPage = 1) => {
      const query = new URLSearchParams();
      for (const key of keys) {
        const value = (key in next ? next[key] : values[key]) ?? "";
        if (value.trim()) query.set(key, value.trim());
      }
      if (nextPage > 1) query.set("page", String(nextPage));
      const text = query.toString();
      router.push(text ? `${pathname}?${text}` : pathname);
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [router, pathname, values],
  );

  return { values, page, go };
}

/** Only the filters that are set, for an API query. */
export function setOnly<T extends Record<string, string>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== "")) as Partial<T>;
}

/** A datetime-local value (local time) as an ISO instant for the API. */
export function instant(local: string): string {
  const parsed = new Date(local);
  return Number.isNaN(parsed.getTime()) ? local : parsed.toISOString();
}

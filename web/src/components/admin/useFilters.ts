"use client";
// Console list filters kept in the address (?status=FAILED&page=2), so Back and shared links keep
// them: the current values, and a way to go to other ones (a new filter starts again at page 1).
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useEffect, useMemo, useState, type FormEvent } from "react";

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

/** What a console list page asks the API for: the filters that are set (times as instants), and
 * the page. */
export type ListQuery<K extends string> = Partial<Record<K, string>> & { page: number; page_size: number };

/**
 * A console list page's state: the filters as being edited (`draft`), the list for the filters in
 * the address (loaded again whenever they or the page change), the submit that applies the draft,
 * and how many pages there are. `fetchPage` asks the API; `since` and `until` go as instants.
 */
export function useFilteredList<K extends string, L extends { total: number }>(
  keys: readonly K[],
  pageSize: number,
  fetchPage: (query: ListQuery<K>) => Promise<L>,
) {
  const { values, page, go } = useFilters(keys);
  const [draft, setDraft] = useState<Record<K, string>>(values);
  const [list, setList] = useState<L | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => setDraft(values), [values]);

  const load = useCallback(async () => {
    setError(null);
    try {
      const set = setOnly(values) as Record<string, string>;
      for (const key of ["since", "until"]) {
        if (set[key]) set[key] = instant(set[key]);
      }
      setList(await fetchPage({ ...(set as Partial<Record<K, string>>), page, page_size: pageSize }));
    } catch (caught) {
      setError(caught);
    }
    // `fetchPage` is the page's own closure, new on every render: the filters and page decide.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [values, page]);

  useEffect(() => {
    void load();
  }, [load]);

  function submit(event: FormEvent) {
    event.preventDefault();
    go(draft);
  }

  const pages = list ? Math.max(1, Math.ceil(list.total / pageSize)) : 1;
  return { page, go, draft, setDraft, list, error, submit, pages };
}

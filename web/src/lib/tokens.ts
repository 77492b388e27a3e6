// Access and refresh tokens, kept where the contract's examples keep them (localStorage).
const ACCESS = "access_token";
const REFRESH = "refresh_token";

type Listener = (signedIn: boolean) => void;
const listeners = new Set<Listener>();

export const tokens = {
  access(): string | null {
    return typeof window === "undefined" ? null : localStorage.getItem(ACCESS);
  },
  refresh(): string | null {
    return typeof window === "undefined" ? null : localStorage.getItem(REFRESH);
  },
  save(access: string, refresh: string): void {
    localStorage.setItem(ACCESS, access);
    localStorage.setItem(REFRESH, refresh);
    listeners.forEach((listener) => listener(true));
  },
  clear(): void {
    const had = localStorage.getItem(ACCESS) !== null || localStorage.getItem(REFRESH) !== null;
    localStorage.removeItem(ACCESS);
    localStorage.removeItem(REFRESH);
    if (had) listeners.forEach((listener) => listener(false));
  },
  /** Called with true on sign-in, false on sign-out (here or, via storage events, in another tab). */
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    const onStorage = (event: StorageEvent) => {
      if (event.key === ACCESS || event.key === null) listener(localStorage.getItem(ACCESS) !== null);
    };
    window.addEventListener("storage", onStorage);
    return () => {
      listeners.delete(listener);
      window.removeEventListener("storage", onStorage);
    };
  },
};

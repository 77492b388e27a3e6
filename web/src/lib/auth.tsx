"use client";
// Who is signed in. The user comes from GET /api/auth/me; signing out anywhere (this tab, another
// tab, a refused refresh) clears the tokens and lands on the sign-in page. A server that cannot be
// reached (or cannot renew the session just now) signs nobody out: the user is asked for again
// after a growing pause.
import { usePathname, useRouter } from "next/navigation";
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";

import { APIError, getApi, unwrap, type Schemas } from "./api/client";
import { tokens } from "./tokens";

export type User = Schemas["MeResponse"];
type Status = "loading" | "signedIn" | "signedOut";

interface Auth {
  status: Status;
  user: User | null;
  /** Store a fresh token pair (after SMS or Google sign-in) and load the user. */
  signIn: (pair: Schemas["TokenResponse"]) => Promise<void>;
  /** End the session on the server (best effort) and forget the tokens. */
  signOut: () => Promise<void>;
  /** Reload the user, e.g. after a task or payment changed the balance. */
  reload: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

/** The pauses before asking again for a user the server could not give (ms): doubling to a cap. */
const RETRY_FIRST = 1000;
const RETRY_MAX = 30_000;

export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<Status>("loading");
  const [user, setUser] = useState<User | null>(null);

  // While the user could not be loaded for a passing failure: the next try, and its pause (ms).
  const retryTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const retryDelay = useRef(RETRY_FIRST);
  const reloadRef = useRef<() => Promise<void>>(async () => {});

  const reload = useCallback(async () => {
    if (retryTimer.current) {
      clearTimeout(retryTimer.current);
      retryTimer.current = null;
    }
    if (!tokens.access()) {
      setUser(null);
      setStatus("signedOut");
      return;
    }
    try {
      const api = await getApi();
      const me = await unwrap(api.GET("/api/auth/me"));
      setUser(me);
      setStatus("signedIn");
      retryDelay.current = RETRY_FIRST;
    } catch (error) {
      if (error instanceof APIError && error.status === 401) {
        // The session was refused (the client already tried to renew it).
        tokens.clear();
        setUser(null);
        setStatus("signedOut");
      } else if (!user) {
        // The server is unreachable or cannot renew the session just now: keep the tokens, and
        // ask again after a pause; the signed-in shell shows once it answers.
        const signedIn = tokens.access() !== null;
        setStatus(signedIn ? "loading" : "signedOut");
        if (signedIn && !retryTimer.current) {
          const delay = retryDelay.current;
          retryDelay.current = Math.min(delay * 2, RETRY_MAX);
          retryTimer.current = setTimeout(() => {
            retryTimer.current = null;
            void reloadRef.current();
          }, delay);
        }
      }
    }
  }, [user]);
  useEffect(() => {
    reloadRef.current = reload;
  }, [reload]);

  useEffect(() => {
    void reload();
    const unsubscribe = tokens.subscribe((signedIn) => {
      if (!signedIn) {
        setUser(null);
        setStatus("signedOut");
      }
    });
    return () => {
      unsubscribe();
      if (retryTimer.current) clearTimeout(retryTimer.current);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const signIn = useCallback(
    async (pair: Schemas["TokenResponse"]) => {
      tokens.save(pair.access_token, pair.refresh_token);
      await reload();
    },
    [reload],
  );

  const signOut = useCallback(async () => {
    try {
      const api = await getApi();
      await api.POST("/api/auth/logout");
    } catch {
      // Signing out locally is what matters; the server session expires on its own.
    } finally {
      tokens.clear();
      setUser(null);
      setStatus("signedOut");
    }
  }, []);

  return (
    <AuthContext.Provider value={{ status, user, signIn, signOut, reload }}>{children}</AuthContext.Provider>
  );
}

export function useAuth(): Auth {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

/** Render children only when signed in; otherwise go to the sign-in page and come back after. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const router = useRouter();
  const pathname = usePathname();

  useEffect(() => {
    if (status === "signedOut") {
      const back = pathname + window.location.search;
      router.replace(`/login/?next=${encodeURIComponent(back)}`);
    }
  }, [status, router, pathname]);

  if (status !== "signedIn") return <p className="muted" role="status">…</p>;
  return <>{children}</>;
}

"use client";
// Who is signed in. The user comes from GET /api/auth/me; signing out anywhere (this tab, another
// tab, a refused refresh) clears the tokens and lands on the sign-in page.
import { usePathname, useRouter } from "next/navigation";
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";

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

export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<Status>("loading");
  const [user, setUser] = useState<User | null>(null);

  const reload = useCallback(async () => {
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
    } catch (error) {
      if (error instanceof APIError && error.status === 401) {
        tokens.clear();
        setUser(null);
        setStatus("signedOut");
      } else if (!user) {
        // The server is unreachable: keep the tokens, show the signed-in shell once it answers.
        setStatus(tokens.access() ? "loading" : "signedOut");
      }
    }
  }, [user]);

  useEffect(() => {
    void reload();
    return tokens.subscribe((signedIn) => {
      if (!signedIn) {
        setUser(null);
        setStatus("signedOut");
      }
    });
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

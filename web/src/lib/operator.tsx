"use client";
// Whether the signed-in user is an operator (support or admin), from GET /api/admin/me: the main
// navigation shows the console link only then, and the console pages wait for it. A 403 means a
// plain user; the answer is asked for again whenever another user signs in.
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";

import { APIError, getApi, unwrap, type Schemas } from "./api/client";
import { useAuth } from "./auth";

export type Operator = Schemas["OperatorOut"];
export type OperatorStatus = "loading" | "operator" | "notOperator" | "error";

interface OperatorState {
  status: OperatorStatus;
  operator: Operator | null;
  error: unknown;
  reload: () => Promise<void>;
}

const OperatorContext = createContext<OperatorState | null>(null);

export function OperatorProvider({ children }: { children: ReactNode }) {
  const { status: authStatus, user } = useAuth();
  const [status, setStatus] = useState<OperatorStatus>("loading");
  const [operator, setOperator] = useState<Operator | null>(null);
  const [error, setError] = useState<unknown>(null);
  const asked = useRef(0);

  const reload = useCallback(async () => {
    const ask = ++asked.current;
    setError(null);
    try {
      const api = await getApi();
      const me = await unwrap(api.GET("/api/admin/me"));
      if (ask !== asked.current) return;
      setOperator(me);
      setStatus("operator");
    } catch (caught) {
      if (ask !== asked.current) return;
      setOperator(null);
      if (caught instanceof APIError && (caught.status === 403 || caught.status === 401)) {
        setStatus("notOperator");
      } else {
        setError(caught);
        setStatus("error");
      }
    }
  }, []);

  const userId = user?.id ?? null;
  useEffect(() => {
    if (authStatus === "signedIn" && userId) {
      setStatus("loading");
      void reload();
    } else if (authStatus === "signedOut") {
      asked.current += 1;
      setOperator(null);
      setStatus("notOperator");
    }
  }, [authStatus, userId, reload]);

  return (
    <OperatorContext.Provider value={{ status, operator, error, reload }}>{children}</OperatorContext.Provider>
  );
}

export function useOperator(): OperatorState {
  const value = useContext(OperatorContext);
  if (!value) throw new Error("useOperator outside OperatorProvider");
  return value;
}

/** Whether the second factor still stands between the operator and the console. */
export function needsSecondFactor(operator: Operator | null): boolean {
  return !!operator && operator.second_factor_required && !operator.second_factor_passed;
}

"use client";
import type { ReactNode } from "react";

import { AuthProvider } from "@/lib/auth";
import { I18nProvider } from "@/lib/i18n";
import { OperatorProvider } from "@/lib/operator";

export function Providers({ children }: { children: ReactNode }) {
  return (
    <I18nProvider>
      <AuthProvider>
        <OperatorProvider>{children}</OperatorProvider>
      </AuthProvider>
    </I18nProvider>
  );
}

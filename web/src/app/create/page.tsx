"use client";
import { Suspense, useEffect, useState } from "react";

import { CreateForm } from "@/components/create/CreateForm";
import { pricesFrom, type Prices } from "@/components/create/prices";
import { ErrorBox } from "@/components/ui";
import { RequireAuth } from "@/lib/auth";
import { loadConfig } from "@/lib/config";
import { useI18n } from "@/lib/i18n";

function Create() {
  const { t } = useI18n();
  const [prices, setPrices] = useState<Prices | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    loadConfig().then((config) => setPrices(pricesFrom(config)), setError);
  }, []);

  return (
    <>
      <h1>{t("create.title")}</h1>
      <ErrorBox error={error} />
      {prices ? (
        <Suspense fallback={null}>
          <CreateForm prices={prices} />
        </Suspense>
      ) : (
        !error && (
          <p className="muted" role="status">
            {t("common.loading")}
          </p>
        )
      )}
    </>
  );
}

export default function CreatePage() {
  return (
    <RequireAuth>
      <Create />
    </RequireAuth>
  );
}

"use client";
import { Suspense, useEffect, useState } from "react";

import { CreateForm } from "@/components/create/CreateForm";
import { ErrorBox } from "@/components/ui";
import { RequireAuth } from "@/lib/auth";
import { loadConfig } from "@/lib/config";
import { useI18n } from "@/lib/i18n";
import { loadModels, type Model } from "@/lib/models";

function Create() {
  const { t } = useI18n();
  const [setup, setSetup] = useState<{ models: Model[]; maxUploadBytes: number } | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    // The models are asked for afresh: whether each is available changes.
    Promise.all([loadConfig(), loadModels(true)]).then(
      ([config, models]) => setSetup({ models, maxUploadBytes: config.max_upload_bytes }),
      setError,
    );
  }, []);

  return (
    <>
      <h1>{t("create.title")}</h1>
      <ErrorBox error={error} />
      {setup ? (
        <Suspense fallback={null}>
          <CreateForm models={setup.models} maxUploadBytes={setup.maxUploadBytes} />
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

"use client";
// The terms page: how generated videos are labelled (the labelling Measures ask a service to say
// so in its user agreement). Open to everyone: the task page's note links here.
import { useI18n } from "@/lib/i18n";

export default function TermsPage() {
  const { t } = useI18n();
  return (
    <>
      <h1>{t("terms.title")}</h1>
      <p>{t("terms.intro")}</p>
      <section className="card" aria-labelledby="labels">
        <h2 id="labels">{t("terms.labels.title")}</h2>
        <p>{t("terms.labels.intro")}</p>
        <ul>
          <li>{t("terms.labels.explicit")}</li>
          <li>{t("terms.labels.implicit")}</li>
          <li>{t("terms.labels.c2pa")}</li>
        </ul>
        <p>{t("terms.labels.rules")}</p>
        <p className="hint">{t("terms.labels.check")}</p>
      </section>
    </>
  );
}

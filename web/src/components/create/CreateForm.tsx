"use client";
// The four kinds of video on one form: pick a kind and one of its models (and, for text and image
// to video, the length), give it what it needs, see the price and the balance, create. The kind
// lives in the address (?kind=text-to-video) so links can open one.
import Link from "next/link";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useId, useState, type FormEvent, type ReactNode } from "react";

import { APIError, getApi, unwrap, type Schemas } from "@/lib/api/client";
import type { UploadResult } from "@/lib/api/upload";
import { useAuth } from "@/lib/auth";
import { useFormat, useI18n, type Translate } from "@/lib/i18n";
import { messages, type MessageKey } from "@/lib/i18n/messages";
import { localized, type Model } from "@/lib/models";
import { ErrorBox } from "@/components/ui";
import { kindLabel } from "@/components/tasks/labels";

import { MediaUpload } from "./MediaUpload";
import {
  ASPECTS,
  isAnimate,
  KINDS,
  meteredEstimate,
  modelsOf,
  pickDuration,
  pickModel,
  pickTier,
  prepaidPrice,
  priceRange,
  type Aspect,
  type Kind,
  type Mode,
  type Quality,
  type Tier,
} from "./prices";
import styles from "./create.module.css";

type Created = Schemas["CreateTaskResponse"];

function Choice<T extends string>({
  name,
  value,
  current,
  onChange,
  children,
}: {
  name: string;
  value: T;
  current: T;
  onChange: (value: T) => void;
  children: ReactNode;
}) {
  return (
    <label className="choice">
      <input type="radio" name={name} value={value} checked={current === value} onChange={() => onChange(value)} />
      {children}
    </label>
  );
}

/** A tier's words: the known ones translated, any other by its name. */
function tierLabel(t: Translate, metered: boolean, tier: Tier, credits: number): string {
  const key = `create.${metered ? "mode" : "quality"}.${tier.name}` as MessageKey;
  return key in messages.en ? t(key, { n: credits }) : t("create.tier.other", { name: tier.name, n: credits });
}

export function CreateForm({ models, maxUploadBytes }: { models: Model[]; maxUploadBytes: number }) {
  const { t, locale } = useI18n();
  const format = useFormat();
  const { user, reload } = useAuth();
  const id = useId();
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const asked = params.get("kind");
  const kind: Kind = (KINDS as string[]).includes(asked ?? "") ? (asked as Kind) : "animate-move";

  const [image, setImage] = useState<UploadResult | null>(null);
  const [video, setVideo] = useState<UploadResult | null>(null);
  const [seconds, setSeconds] = useState<number | null>(null);
  const [imageBusy, setImageBusy] = useState(false);
  const [videoBusy, setVideoBusy] = useState(false);
  // What the user picked; each is checked against the chosen model below (a model without the
  // asked duration, tier or aspect ratio falls back to its default).
  const [chosenModels, setChosenModels] = useState<Partial<Record<Kind, string>>>({});
  const [askedDuration, setAskedDuration] = useState<number | null>(null);
  const [mode, setMode] = useState<string>("wan-std");
  const [quality, setQuality] = useState<string>("standard");
  const [askedAspect, setAskedAspect] = useState<Aspect>("landscape");
  const [prompt, setPrompt] = useState("");
  const [problem, setProblem] = useState<MessageKey | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [submitting, setSubmitting] = useState(false);

  const animate = isAnimate(kind);
  const needsImage = kind !== "text-to-video";
  const needsPrompt = !animate;

  const choices = modelsOf(models, kind);
  const model = pickModel(choices, chosenModels[kind]);
  const metered = model?.billing_mode === "metered";
  const tier = pickTier(model, animate ? mode : quality);
  const duration = animate ? null : pickDuration(model, askedDuration);
  const maxPrompt = model?.limits.prompt_max_chars ?? 0;
  const aspects = ASPECTS.filter((value) => model?.limits.aspect_ratios.includes(value));
  const aspectChoices = aspects.length ? aspects : ASPECTS;
  const aspect = aspectChoices.includes(askedAspect) ? askedAspect : aspectChoices[0];
  const blocked = model === null || !model.available;

  const chooseKind = (next: Kind) => {
    setProblem(null);
    setError(null);
    router.replace(`${pathname}?kind=${next}`, { scroll: false });
  };

  const chooseModel = (next: string) => {
    setProblem(null);
    setError(null);
    setChosenModels((current) => ({ ...current, [kind]: next }));
  };

  const onDuration = useCallback((value: number | null) => setSeconds(value), []);

  // The price shown before creating, from the chosen model and tier: per task (at the chosen
  // duration) for a prepaid model; seconds × rate for a metered one once the video's length is known.
  const price: number | null =
    tier === null
      ? null
      : metered
        ? seconds !== null
          ? meteredEstimate(seconds, tier.credits)
          : null
        : prepaidPrice(tier, duration);
  const available = user?.available ?? null;
  const short = price !== null && available !== null && price > available;

  const check = (): MessageKey | null => {
    if (imageBusy || videoBusy) return "create.waitUploads";
    if (needsImage && !image) return "create.needImage";
    if (animate && !video) return "create.needVideo";
    if (needsPrompt && !prompt.trim()) return "create.prompt.required";
    if (needsPrompt && prompt.length > maxPrompt) return "create.prompt.tooLong";
    return null;
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!model || blocked) return;
    const found = check();
    setProblem(found);
    if (found) return;
    setSubmitting(true);
    try {
      const api = await getApi();
      let created: Created;
      if (kind === "animate-move" || kind === "animate-mix") {
        const body = {
          image_url: image!.file_url,
          video_url: video!.file_url,
          mode: (tier?.name ?? mode) as Mode,
          check_image: true,
          model: model.id,
        };
        created = await unwrap(
          kind === "animate-move"
            ? api.POST("/api/videos/animate-move", { body })
            : api.POST("/api/videos/animate-mix", { body }),
        );
      } else {
        const common = {
          prompt,
          quality: (tier?.name ?? quality) as Quality,
          aspect_ratio: aspect,
          model: model.id,
          ...(duration !== null ? { duration } : {}),
        };
        created = await unwrap(
          kind === "text-to-video"
            ? api.POST("/api/videos/text-to-video", { body: common })
            : api.POST("/api/videos/image-to-video", { body: { ...common, image_urls: [image!.file_url] } }),
        );
      }
      void reload();
      router.push(`/task/?id=${encodeURIComponent(created.task_id)}`);
    } catch (caught) {
      setError(caught);
      setSubmitting(false);
    }
  };

  // Once a create was stopped, the reason shown follows the form: it goes when it is fixed.
  const shownProblem = problem ? check() : null;
  const insufficient = error instanceof APIError && error.status === 402;
  const over = needsPrompt && model !== null && prompt.length > maxPrompt;

  return (
    <form onSubmit={submit} noValidate className={styles.form}>
      <fieldset className={styles.kinds}>
        <legend>{t("create.kind.legend")}</legend>
        {KINDS.map((value) => {
          const ofKind = modelsOf(models, value);
          const range = priceRange(ofKind);
          const perSecond = ofKind.length > 0 && ofKind.every((candidate) => candidate.billing_mode === "metered");
          const words =
            range === null
              ? t("create.kind.none")
              : range.low === range.high
                ? t(perSecond ? "create.kind.perSecondOne" : "create.kind.fixedOne", { n: range.low })
                : t(perSecond ? "create.kind.perSecond" : "create.kind.fixed", range);
          return (
            <label key={value} className={styles.kind}>
              <input
                type="radio"
                name="kind"
                value={value}
                checked={kind === value}
                onChange={() => chooseKind(value)}
                aria-labelledby={`${id}-${value}-name`}
                aria-describedby={`${id}-${value}-desc ${id}-${value}-price`}
              />
              <span id={`${id}-${value}-name`} className={styles.kindName}>
                {kindLabel(t, value)}
              </span>
              <span id={`${id}-${value}-desc`} className={styles.kindDesc}>
                {t(`create.kind.${value}.desc` as MessageKey)}
              </span>
              <span id={`${id}-${value}-price`} className={styles.kindPrice}>
                {words}
              </span>
            </label>
          );
        })}
      </fieldset>

      <section className="card" aria-labelledby={`${id}-form-heading`}>
        <h2 id={`${id}-form-heading`}>{kindLabel(t, kind)}</h2>

        {choices.length === 0 ? (
          <div className="alert alert-warning" role="status" id={`${id}-blocked`}>
            {t("create.model.none")}
          </div>
        ) : (
          <fieldset className={styles.models}>
            <legend>{t("create.model.legend")}</legend>
            {choices.map((candidate) => {
              const base = `${id}-model-${candidate.id}`;
              const isDefault = candidate.default_for.includes(kind);
              const described = [`${base}-desc`, isDefault && `${base}-default`, !candidate.available && `${base}-off`]
                .filter(Boolean)
                .join(" ");
              return (
                <label key={candidate.id} className={styles.model}>
                  <input
                    type="radio"
                    name="model"
                    value={candidate.id}
                    checked={model?.id === candidate.id}
                    onChange={() => chooseModel(candidate.id)}
                    aria-labelledby={`${base}-name`}
                    aria-describedby={described}
                  />
                  <span className={styles.modelHead}>
                    <span id={`${base}-name`} className={styles.kindName}>
                      {localized(candidate.name, locale)}
                    </span>
                    {isDefault && (
                      <span id={`${base}-default`} className={styles.tag}>
                        {t("create.model.default")}
                      </span>
                    )}
                    {!candidate.available && (
                      <span id={`${base}-off`} className={`${styles.tag} ${styles.off}`}>
                        {t("create.model.unavailable")}
                      </span>
                    )}
                  </span>
                  <span id={`${base}-desc`} className={styles.kindDesc}>
                    {localized(candidate.description, locale)}
                  </span>
                </label>
              );
            })}
          </fieldset>
        )}
        {model && !model.available && (
          <div className="alert alert-warning" role="status" id={`${id}-blocked`}>
            {t("create.model.unavailableNote", { name: localized(model.name, locale) })}
          </div>
        )}

        {/* Both file fields stay mounted (hidden when unused) so a switch of kind keeps the uploads. */}
        <div hidden={!needsImage}>
          <MediaUpload
            maxBytes={maxUploadBytes}
            kind="image"
            label={t(kind === "animate-move" ? "create.image.animate" : kind === "animate-mix" ? "create.image.mix" : "create.image.picture")}
            hint={t("create.image.hint")}
            value={image}
            onChange={setImage}
            onBusy={setImageBusy}
          />
        </div>

        <div hidden={!animate}>
          <MediaUpload
            maxBytes={maxUploadBytes}
            kind="video"
            label={t(kind === "animate-move" ? "create.video.animate" : "create.video.mix")}
            hint={t("create.video.hint")}
            value={video}
            onChange={setVideo}
            onDuration={onDuration}
            onBusy={setVideoBusy}
          />
        </div>

        {needsPrompt && model && (
          <div className="field">
            <label htmlFor={`${id}-prompt`}>{t("create.prompt.label")}</label>
            <textarea
              id={`${id}-prompt`}
              className={styles.textarea}
              value={prompt}
              onChange={(event) => setPrompt(event.target.value)}
              aria-describedby={`${id}-prompt-hint ${id}-prompt-count`}
              aria-invalid={over || undefined}
              rows={5}
            />
            <p id={`${id}-prompt-hint`} className="hint">
              {t(kind === "text-to-video" ? "create.prompt.hint.text" : "create.prompt.hint.image")}
            </p>
            <p id={`${id}-prompt-count`} className={`hint ${styles.counter}${over ? ` ${styles.over}` : ""}`}>
              {t("create.prompt.count", { n: format.number(prompt.length), max: format.number(maxPrompt) })}
            </p>
          </div>
        )}

        {!animate && model && duration !== null && (
          <fieldset>
            <legend>{t("create.duration.legend")}</legend>
            {model.limits.durations.map((value) => (
              <Choice
                key={value}
                name="duration"
                value={String(value)}
                current={String(duration)}
                onChange={(next) => setAskedDuration(Number(next))}
              >
                {tier
                  ? t("create.duration.option", { n: value, credits: prepaidPrice(tier, value) })
                  : t("create.duration.seconds", { n: value })}
              </Choice>
            ))}
          </fieldset>
        )}

        {model && tier && (
          <fieldset>
            <legend>{t(metered ? "create.mode.legend" : "create.quality.legend")}</legend>
            {model.tiers.map((value) => (
              <Choice
                key={value.name}
                name={metered ? "mode" : "quality"}
                value={value.name}
                current={tier.name}
                onChange={animate ? setMode : setQuality}
              >
                {tierLabel(t, metered, value, metered ? value.credits : prepaidPrice(value, duration))}
              </Choice>
            ))}
          </fieldset>
        )}

        {needsPrompt && model && (
          <fieldset>
            <legend>{t("create.aspect.legend")}</legend>
            {aspectChoices.map((value) => (
              <Choice key={value} name="aspect" value={value} current={aspect} onChange={setAskedAspect}>
                {t(`create.aspect.${value}` as MessageKey)}
              </Choice>
            ))}
          </fieldset>
        )}
      </section>

      <section className={`card ${styles.price}`} aria-labelledby={`${id}-price-heading`}>
        <h2 id={`${id}-price-heading`}>{t("create.price.heading")}</h2>
        <div aria-live="polite" data-testid="price">
          {tier === null ? (
            <p className={styles.priceAmount}>—</p>
          ) : metered ? (
            price !== null && seconds !== null ? (
              <>
                <p className={styles.priceAmount}>
                  {t("create.price.estimate", {
                    n: price,
                    seconds: Math.round(seconds * 10) / 10,
                    rate: tier.credits,
                  })}
                </p>
                <p className="hint">{t("create.price.estimateNote")}</p>
              </>
            ) : (
              <p className={styles.priceAmount}>{t("create.price.rate", { rate: tier.credits })}</p>
            )
          ) : (
            <p className={styles.priceAmount}>{t("create.price.fixed", { n: price ?? 0 })}</p>
          )}
        </div>
        {available !== null && (
          <p data-testid="available">{t("create.available", { n: format.number(available) })}</p>
        )}
        {short && (
          <div className="alert alert-warning" role="status">
            {t("create.short")} <Link href="/buy/">{t("create.buy")}</Link>
          </div>
        )}
      </section>

      {shownProblem && (
        <div className="alert alert-error" role="alert">
          {t(shownProblem, { n: format.number(prompt.length), max: format.number(maxPrompt) })}
        </div>
      )}
      <ErrorBox error={error} />
      {insufficient && (
        <p>
          <Link href="/buy/" className="button">
            {t("create.buy")}
          </Link>
        </p>
      )}
      <p>
        <button
          type="submit"
          className="button"
          disabled={submitting || blocked}
          aria-describedby={blocked ? `${id}-blocked` : undefined}
        >
          {submitting ? t("create.submitting") : t("create.submit")}
        </button>
      </p>
    </form>
  );
}

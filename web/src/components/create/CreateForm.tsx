"use client";
// The four kinds of video on one form: pick a kind, give it what it needs, see the price and the
// balance, create. The kind lives in the address (?kind=text-to-video) so links can open one.
import Link from "next/link";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useCallback, useId, useState, type FormEvent, type ReactNode } from "react";

import { APIError, getApi, unwrap, type Schemas } from "@/lib/api/client";
import type { UploadResult } from "@/lib/api/upload";
import { useAuth } from "@/lib/auth";
import { useFormat, useI18n } from "@/lib/i18n";
import type { MessageKey } from "@/lib/i18n/messages";
import { ErrorBox } from "@/components/ui";
import { kindLabel } from "@/components/tasks/labels";

import { MediaUpload } from "./MediaUpload";
import {
  isAnimate,
  KINDS,
  MAX_PROMPT,
  meteredEstimate,
  type Aspect,
  type Kind,
  type Mode,
  type Prices,
  type Quality,
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

export function CreateForm({ prices }: { prices: Prices }) {
  const { t } = useI18n();
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
  const [mode, setMode] = useState<Mode>("wan-std");
  const [prompt, setPrompt] = useState("");
  const [quality, setQuality] = useState<Quality>("standard");
  const [aspect, setAspect] = useState<Aspect>("landscape");
  const [problem, setProblem] = useState<MessageKey | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [submitting, setSubmitting] = useState(false);

  const animate = isAnimate(kind);
  const needsImage = kind !== "text-to-video";
  const needsPrompt = !animate;

  const chooseKind = (next: Kind) => {
    setProblem(null);
    setError(null);
    router.replace(`${pathname}?kind=${next}`, { scroll: false });
  };

  const onDuration = useCallback((value: number | null) => setSeconds(value), []);

  // The price shown before creating: fixed for Sora, seconds × rate for animate when known.
  const price: number | null = animate
    ? seconds !== null
      ? meteredEstimate(seconds, prices.perSecond[mode])
      : null
    : prices.fixed[kind as "text-to-video" | "image-to-video"][quality];
  const available = user?.available ?? null;
  const short = price !== null && available !== null && price > available;

  const check = (): MessageKey | null => {
    if (imageBusy || videoBusy) return "create.waitUploads";
    if (needsImage && !image) return "create.needImage";
    if (animate && !video) return "create.needVideo";
    if (needsPrompt && !prompt.trim()) return "create.prompt.required";
    if (needsPrompt && prompt.length > MAX_PROMPT) return "create.prompt.tooLong";
    return null;
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const found = check();
    setProblem(found);
    if (found) return;
    setSubmitting(true);
    try {
      const api = await getApi();
      let created: Created;
      if (kind === "animate-move" || kind === "animate-mix") {
        const body = { image_url: image!.file_url, video_url: video!.file_url, mode, check_image: true };
        created = await unwrap(
          kind === "animate-move"
            ? api.POST("/api/videos/animate-move", { body })
            : api.POST("/api/videos/animate-mix", { body }),
        );
      } else if (kind === "text-to-video") {
        created = await unwrap(
          api.POST("/api/videos/text-to-video", { body: { prompt, quality, aspect_ratio: aspect } }),
        );
      } else {
        created = await unwrap(
          api.POST("/api/videos/image-to-video", {
            body: { prompt, quality, aspect_ratio: aspect, image_urls: [image!.file_url] },
          }),
        );
      }
      void reload();
      router.push(`/task/?id=${encodeURIComponent(created.task_id)}`);
    } catch (caught) {
      setError(caught);
      setSubmitting(false);
    }
  };

  const insufficient = error instanceof APIError && error.status === 402;
  const over = prompt.length > MAX_PROMPT;

  return (
    <form onSubmit={submit} noValidate className={styles.form}>
      <fieldset className={styles.kinds}>
        <legend>{t("create.kind.legend")}</legend>
        {KINDS.map((value) => {
          const range = isAnimate(value)
            ? t("create.kind.perSecond", { rate: prices.perSecond["wan-std"], pro: prices.perSecond["wan-pro"] })
            : t("create.kind.fixed", { low: prices.fixed[value].standard, high: prices.fixed[value].hd });
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
                {range}
              </span>
            </label>
          );
        })}
      </fieldset>

      <section className="card" aria-labelledby={`${id}-form-heading`}>
        <h2 id={`${id}-form-heading`}>{kindLabel(t, kind)}</h2>

        {/* Both file fields stay mounted (hidden when unused) so a switch of kind keeps the uploads. */}
        <div hidden={!needsImage}>
          <MediaUpload
            maxBytes={prices.maxUploadBytes}
            kind="image"
            label={t(kind === "animate-move" ? "create.image.animate" : kind === "animate-mix" ? "create.image.mix" : "create.image.sora")}
            hint={t("create.image.hint")}
            value={image}
            onChange={setImage}
            onBusy={setImageBusy}
          />
        </div>

        <div hidden={!animate}>
          <MediaUpload
              maxBytes={prices.maxUploadBytes}
              kind="video"
              label={t(kind === "animate-move" ? "create.video.animate" : "create.video.mix")}
              hint={t("create.video.hint")}
              value={video}
              onChange={setVideo}
              onDuration={onDuration}
            onBusy={setVideoBusy}
          />
        </div>

        {animate && (
          <>
            <fieldset>
              <legend>{t("create.mode.legend")}</legend>
              {(["wan-std", "wan-pro"] as Mode[]).map((value) => (
                <Choice key={value} name="mode" value={value} current={mode} onChange={setMode}>
                  {t(`create.mode.${value}` as MessageKey, { n: prices.perSecond[value] })}
                </Choice>
              ))}
            </fieldset>
          </>
        )}

        {needsPrompt && (
          <>
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
                {t("create.prompt.count", { n: format.number(prompt.length), max: format.number(MAX_PROMPT) })}
              </p>
            </div>
            <fieldset>
              <legend>{t("create.quality.legend")}</legend>
              {(["standard", "hd"] as Quality[]).map((value) => (
                <Choice key={value} name="quality" value={value} current={quality} onChange={setQuality}>
                  {t(`create.quality.${value}` as MessageKey, {
                    n: prices.fixed[kind as "text-to-video" | "image-to-video"][value],
                  })}
                </Choice>
              ))}
            </fieldset>
            <fieldset>
              <legend>{t("create.aspect.legend")}</legend>
              {(["landscape", "portrait"] as Aspect[]).map((value) => (
                <Choice key={value} name="aspect" value={value} current={aspect} onChange={setAspect}>
                  {t(`create.aspect.${value}` as MessageKey)}
                </Choice>
              ))}
            </fieldset>
          </>
        )}
      </section>

      <section className={`card ${styles.price}`} aria-labelledby={`${id}-price-heading`}>
        <h2 id={`${id}-price-heading`}>{t("create.price.heading")}</h2>
        <div aria-live="polite" data-testid="price">
          {animate ? (
            price !== null && seconds !== null ? (
              <>
                <p className={styles.priceAmount}>
                  {t("create.price.estimate", {
                    n: price,
                    seconds: Math.round(seconds * 10) / 10,
                    rate: prices.perSecond[mode],
                  })}
                </p>
                <p className="hint">{t("create.price.estimateNote")}</p>
              </>
            ) : (
              <p className={styles.priceAmount}>{t("create.price.rate", { rate: prices.perSecond[mode] })}</p>
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

      {problem && (
        <div className="alert alert-error" role="alert">
          {t(problem, { n: format.number(prompt.length), max: format.number(MAX_PROMPT) })}
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
        <button type="submit" className="button" disabled={submitting}>
          {submitting ? t("create.submitting") : t("create.submit")}
        </button>
      </p>
    </form>
  );
}

"use client";
// One file field that uploads as soon as a file is chosen, with a progress bar, a preview, and
// the server's refusal shown as it words it.
import { useEffect, useId, useRef, useState } from "react";

import { uploadFile, type UploadResult } from "@/lib/api/upload";
import { useI18n } from "@/lib/i18n";
import { ErrorBox, ProgressBar } from "@/components/ui";

import { IMAGE_TYPES, VIDEO_TYPES } from "./prices";
import styles from "./create.module.css";

interface Props {
  kind: "image" | "video";
  label: string;
  hint: string;
  value: UploadResult | null;
  onChange: (result: UploadResult | null) => void;
  /** Reports the video's length once known (from the server, else from the browser). */
  onDuration?: (seconds: number | null) => void;
  onBusy?: (busy: boolean) => void;
  /** The server's upload limit. */
  maxBytes: number;
}

export function MediaUpload({ kind, label, hint, value, onChange, onDuration, onBusy, maxBytes }: Props) {
  const { t } = useI18n();
  const id = useId();
  const types = kind === "image" ? IMAGE_TYPES : VIDEO_TYPES;
  const [name, setName] = useState("");
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [problem, setProblem] = useState("");
  const [preview, setPreview] = useState<string | null>(null);
  const abort = useRef<AbortController | null>(null);
  const uploading = progress !== null && value === null && !error;

  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    onBusy?.(uploading);
  }, [uploading, onBusy]);
  useEffect(
    () => () => {
      if (preview) URL.revokeObjectURL(preview);
    },
    [preview],
  );

  /** False when the file was refused, so the field can be cleared for another try. */
  const choose = async (file: File | undefined): Promise<boolean> => {
    abort.current?.abort();
    setError(null);
    setProblem("");
    onChange(null);
    onDuration?.(null);
    setProgress(null);
    setPreview(null);
    if (!file) return true;
    setName(file.name);
    const extension = file.name.slice(file.name.lastIndexOf(".")).toLowerCase();
    if (!types.extensions.includes(extension)) {
      setProblem(t("create.upload.badType", { name: file.name, types: types.extensions.join(", ") }));
      return false;
    }
    if (file.size > maxBytes) {
      const size = (file.size / 1024 / 1024).toFixed(1);
      setProblem(t("create.upload.tooBig", { name: file.name, size, max: Math.floor(maxBytes / 1024 / 1024) }));
      return false;
    }
    const controller = new AbortController();
    abort.current = controller;
    setProgress(0);
    try {
      const result = await uploadFile(file, kind, (fraction) => setProgress(fraction), controller.signal);
      if (controller.signal.aborted) return true;
      setProgress(1);
      setPreview(URL.createObjectURL(file));
      onChange(result);
      if (result.duration_seconds != null) onDuration?.(result.duration_seconds);
      return true;
    } catch (caught) {
      if (controller.signal.aborted) return true;
      setError(caught);
      return false;
    }
  };

  const done = value
    ? kind === "video" && value.duration_seconds != null
      ? t("create.upload.doneVideo", { name, seconds: value.duration_seconds })
      : value.width && value.height
        ? t("create.upload.doneSize", { name, width: value.width, height: value.height })
        : t("create.upload.done", { name })
    : "";

  return (
    <div className="field">
      <label htmlFor={`${id}-file`}>{label}</label>
      <input
        id={`${id}-file`}
        type="file"
        className={styles.file}
        accept={[...types.extensions, ...types.mime].join(",")}
        aria-describedby={`${id}-hint ${id}-state`}
        onChange={(event) => {
          const input = event.currentTarget;
          void choose(input.files?.[0]).then((accepted) => {
            if (!accepted) input.value = "";
          });
        }}
      />
      <p id={`${id}-hint`} className="hint">
        {hint}
      </p>
      {progress !== null && !error && (
        <ProgressBar value={progress * 100} label={t(kind === "image" ? "create.upload.image" : "create.upload.video")} />
      )}
      <p id={`${id}-state`} className="hint" aria-live="polite">
        {uploading ? t("create.upload.uploading", { name }) : done}
      </p>
      {problem && (
        <div className="alert alert-error" role="alert">
          {problem}
        </div>
      )}
      <ErrorBox error={error} />
      {preview && value && kind === "image" && (
        // eslint-disable-next-line @next/next/no-img-element
        <img src={preview} alt={t("create.preview.image")} className={styles.preview} />
      )}
      {preview && value && kind === "video" && (
        <video
          src={preview}
          className={styles.preview}
          controls
          muted
          playsInline
          preload="metadata"
          aria-label={t("create.preview.video")}
          onLoadedMetadata={(event) => {
            const seconds = event.currentTarget.duration;
            if (value.duration_seconds == null && Number.isFinite(seconds) && seconds > 0) onDuration?.(seconds);
          }}
        />
      )}
    </div>
  );
}

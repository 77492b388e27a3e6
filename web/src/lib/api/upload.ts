// Uploads go through XMLHttpRequest: fetch cannot report upload progress.
import { loadConfig, apiOrigin } from "../config";
import { APIError, authHeaders, refreshTokens, unavailableError, type Schemas } from "./client";
import { tokens } from "../tokens";

export type UploadResult = Schemas["UploadResponse"];
export type FileKind = "image" | "video";

function sendOnce(
  url: string,
  headers: Record<string, string>,
  form: FormData,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new APIError(0, "Network error"));
    xhr.onabort = () => reject(new APIError(0, "Upload cancelled"));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(form);
  });
}

/** POST /api/videos/upload with progress (0..1); one refresh and retry on an expired token (a
 * refresh that cannot be made just now fails the upload and keeps the user signed in). */
export async function uploadFile(
  file: File,
  kind: FileKind,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<UploadResult> {
  const config = await loadConfig();
  const url = `${apiOrigin(config)}/api/videos/upload`;
  const form = new FormData();
  form.append("file", file);
  form.append("file_type", kind);
  let result = await sendOnce(url, authHeaders(config), form, onProgress, signal);
  if (result.status === 401 && tokens.access()) {
    const outcome = await refreshTokens(config);
    // Not renewed for now: fail this upload with why, and stay signed in.
    if (outcome.kind === "unavailable") throw unavailableError(outcome);
    if (outcome.kind === "refreshed") {
      onProgress(0);
      result = await sendOnce(url, authHeaders(config), form, onProgress, signal);
    }
  }
  if (result.status < 200 || result.status >= 300) {
    throw new APIError(result.status, (result.body as { detail?: unknown } | null)?.detail);
  }
  return result.body as UploadResult;
}

// Uploads are resumable (tus 1.0, /api/uploads/tus/): the file goes in 5 MB PATCHes, and a cut
// connection is retried from where the server says it stopped, not from zero.
import { DetailedError, Upload, type HttpResponse } from "tus-js-client";

import { apiOrigin, loadConfig, type WebConfig } from "../config";
import { APIError, authHeaders, refreshTokens, unavailableError, type Schemas } from "./client";
import { tokens } from "../tokens";

export type UploadResult = Schemas["UploadResponse"];
export type FileKind = "image" | "video";

/** 5 MB per PATCH: what a cut connection can cost at most. */
export const CHUNK_BYTES = 5 * 1024 * 1024;
/** Waits (ms) before each retry of a failed request; after the last, the upload fails. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];

function parseBody(response: HttpResponse | null | undefined): unknown {
  try {
    return JSON.parse(response?.getBody() ?? "");
  } catch {
    return null;
  }
}

/** The server's refusal as vidgate's APIError, with its status and `detail`. */
function asApiError(error: Error): APIError {
  if (error instanceof DetailedError && error.originalResponse) {
    const response = error.originalResponse;
    return new APIError(response.getStatus(), (parseBody(response) as { detail?: unknown } | null)?.detail);
  }
  return new APIError(0, "Network error");
}

function statusOf(error: Error): number {
  return error instanceof DetailedError && error.originalResponse ? error.originalResponse.getStatus() : 0;
}

/** The upload's JSON: in the body of the PATCH that completed it, else (the file was already
 * complete on the server when the client resumed) from GET on the upload. */
async function resultOf(config: WebConfig, url: string | null, last: HttpResponse): Promise<UploadResult> {
  const body = parseBody(last);
  if (body && typeof body === "object" && "upload_id" in body) return body as UploadResult;
  const response = await fetch(url ?? "", { headers: authHeaders(config) });
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new APIError(response.status, (answer as { detail?: unknown } | null)?.detail);
  return answer as UploadResult;
}

function sendResumable(
  config: WebConfig,
  upload: Upload,
  onProgress: (fraction: number) => void,
): Promise<{ last: HttpResponse } | { error: Error }> {
  return new Promise((resolve) => {
    upload.options.onProgress = (sent, total) => onProgress(total ? sent / total : 0);
    upload.options.onSuccess = ({ lastResponse }) => resolve({ last: lastResponse });
    upload.options.onError = (error) => resolve({ error });
    // The token may have been renewed since the upload started.
    upload.options.onBeforeRequest = (request) => {
      for (const [name, value] of Object.entries(authHeaders(config))) request.setHeader(name, value);
    };
    upload.start();
  });
}

/** Upload a file with progress (0..1), resumably; one refresh and retry on an expired token (a
 * refresh that cannot be made just now fails the upload and keeps the user signed in). */
export async function uploadFile(
  file: File,
  kind: FileKind,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<UploadResult> {
  const config = await loadConfig();
  const upload = new Upload(file, {
    endpoint: `${apiOrigin(config)}/api/uploads/tus/`,
    metadata: { filename: file.name, file_type: kind },
    chunkSize: CHUNK_BYTES,
    retryDelays: RETRY_DELAYS,
    // A resumed upload is one the same page started: nothing is kept across visits or accounts.
    storeFingerprintForResuming: false,
  });
  signal?.addEventListener("abort", () => void upload.abort(true).catch(() => undefined));
  let outcome = await sendResumable(config, upload, onProgress);
  if ("error" in outcome && statusOf(outcome.error) === 401 && tokens.access()) {
    const refreshed = await refreshTokens(config);
    // Not renewed for now: fail this upload with why, and stay signed in.
    if (refreshed.kind === "unavailable") throw unavailableError(refreshed);
    if (refreshed.kind === "refreshed") outcome = await sendResumable(config, upload, onProgress);
  }
  if (signal?.aborted) throw new APIError(0, "Upload cancelled");
  if ("error" in outcome) throw asApiError(outcome.error);
  return resultOf(config, upload.url, outcome.last);
}

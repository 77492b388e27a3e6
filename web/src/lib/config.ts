// The deployment's settings, asked of the server that served this page: one build runs anywhere.
import type { components } from "./api/schema";

export type WebConfig = components["schemas"]["WebConfig"];

let pending: Promise<WebConfig> | null = null;

export function loadConfig(): Promise<WebConfig> {
  if (!pending) {
    pending = fetch("/api/web/config", { cache: "no-store" }).then(async (response) => {
      if (!response.ok) throw new Error(`config: HTTP ${response.status}`);
      return (await response.json()) as WebConfig;
    });
    pending.catch(() => {
      pending = null; // try again on the next call
    });
  }
  return pending;
}

/** The origin part of the API base ("/api" → "", "https://x.example/api" → "https://x.example"):
 * the generated client's paths already start with /api. */
export function apiOrigin(config: WebConfig): string {
  return config.api_base_url.replace(/\/+$/, "").replace(/\/api$/, "");
}

// Prices and limits: the prices and the upload limit come from the server; the rest are as
// docs/api.md §3.1–3.2 gives them. The server checks everything again, and its answer is what is shown.
import type { WebConfig } from "@/lib/config";

export type Kind = "animate-move" | "animate-mix" | "text-to-video" | "image-to-video";
export type Mode = "wan-std" | "wan-pro";
export type Quality = "standard" | "hd";
export type Aspect = "landscape" | "portrait";

export const KINDS: Kind[] = ["animate-move", "animate-mix", "text-to-video", "image-to-video"];

/** The server's price list (GET /api/web/config): credits per second of output for the animate
 * kinds (charged when they finish), per task for the Sora kinds (taken when created). */
export interface Prices {
  perSecond: Record<Mode, number>;
  fixed: Record<"text-to-video" | "image-to-video", Record<Quality, number>>;
  maxUploadBytes: number;
}

export function pricesFrom(config: WebConfig): Prices {
  const table = config.prices;
  const animate = table["animate-move"] ?? {};
  const fixed = (kind: "text-to-video" | "image-to-video") => ({
    standard: table[kind]?.standard ?? NaN,
    hd: table[kind]?.hd ?? NaN,
  });
  return {
    perSecond: { "wan-std": animate["wan-std"] ?? NaN, "wan-pro": animate["wan-pro"] ?? NaN },
    fixed: { "text-to-video": fixed("text-to-video"), "image-to-video": fixed("image-to-video") },
    maxUploadBytes: config.max_upload_bytes,
  };
}

export const MAX_PROMPT = 5000;

export const IMAGE_TYPES = { extensions: [".jpg", ".jpeg", ".png", ".webp"], mime: ["image/jpeg", "image/png", "image/webp"] };
// Uploads also take .webm, but the animate models accept only these three.
export const VIDEO_TYPES = { extensions: [".mp4", ".mov", ".avi"], mime: ["video/mp4", "video/quicktime", "video/x-msvideo"] };

export function isAnimate(kind: Kind): kind is "animate-move" | "animate-mix" {
  return kind === "animate-move" || kind === "animate-mix";
}

/** The server's rounding: whole credits, up, of seconds × rate. */
export function meteredEstimate(seconds: number, rate: number): number {
  return Math.ceil(Math.round(seconds * rate * 1e6) / 1e6);
}

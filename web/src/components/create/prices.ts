// Prices and limits of the create page. Each model of the catalog (GET /api/videos/models) brings
// its tiers, its prices and its limits (prompt length, durations, aspect ratios); the upload limit
// comes from the web config. The server checks everything again, and its answer is what is shown.
import type { Model } from "@/lib/models";

export type Kind = "animate-move" | "animate-mix" | "text-to-video" | "image-to-video";
export type Mode = "wan-std" | "wan-pro";
export type Quality = "standard" | "hd";
export type Aspect = "landscape" | "portrait";
export type Tier = Model["tiers"][number];

export const KINDS: Kind[] = ["animate-move", "animate-mix", "text-to-video", "image-to-video"];
export const MODES: Mode[] = ["wan-std", "wan-pro"];
export const QUALITIES: Quality[] = ["standard", "hd"];
export const ASPECTS: Aspect[] = ["landscape", "portrait"];

export const IMAGE_TYPES = { extensions: [".jpg", ".jpeg", ".png", ".webp"], mime: ["image/jpeg", "image/png", "image/webp"] };
// Uploads also take .webm, but the animate models accept only these three.
export const VIDEO_TYPES = { extensions: [".mp4", ".mov", ".avi"], mime: ["video/mp4", "video/quicktime", "video/x-msvideo"] };

export function isAnimate(kind: Kind): kind is "animate-move" | "animate-mix" {
  return kind === "animate-move" || kind === "animate-mix";
}

/** The models that make `kind`, its default first (the server lists them so). */
export function modelsOf(models: Model[], kind: Kind): Model[] {
  const found = models.filter((model) => model.kinds.includes(kind));
  const first = found.findIndex((model) => model.default_for.includes(kind));
  return first > 0 ? [found[first], ...found.slice(0, first), ...found.slice(first + 1)] : found;
}

/** The model with this id among `choices`, else the default (the first). */
export function pickModel(choices: Model[], id: string | undefined): Model | null {
  return choices.find((model) => model.id === id) ?? choices[0] ?? null;
}

/** The duration the model offers closest to what was asked: the asked one when it has it, else
 * its default; null for a model without durations (the animate kinds follow their video). */
export function pickDuration(model: Model | null, asked: number | null): number | null {
  const durations = model?.limits.durations ?? [];
  if (durations.length === 0) return null;
  if (asked !== null && durations.includes(asked)) return asked;
  const fallback = model?.limits.default_duration;
  return fallback != null && durations.includes(fallback) ? fallback : durations[0];
}

/** The tier with this name, else the model's first (the cheapest the catalog lists). */
export function pickTier(model: Model | null, name: string): Tier | null {
  return model?.tiers.find((tier) => tier.name === name) ?? model?.tiers[0] ?? null;
}

/** What a prepaid tier costs for `duration` seconds: the catalog's price for that duration, or the
 * tier's price (the default duration's) when it lists none. */
export function prepaidPrice(tier: Tier, duration: number | null): number {
  const byDuration = tier.credits_by_duration;
  if (byDuration && duration !== null && byDuration[String(duration)] !== undefined) return byDuration[String(duration)];
  return tier.credits;
}

/** The server's rounding: whole credits, up, of seconds × rate. */
export function meteredEstimate(seconds: number, rate: number): number {
  return Math.ceil(Math.round(seconds * rate * 1e6) / 1e6);
}

/** The cheapest and dearest a kind can cost over its models, tiers and durations: credits per
 * second for metered models, credits per task for prepaid ones. Null when no model makes it. */
export function priceRange(models: Model[]): { low: number; high: number } | null {
  const prices = models.flatMap((model) =>
    model.tiers.flatMap((tier) =>
      model.billing_mode === "prepaid" && tier.credits_by_duration
        ? Object.values(tier.credits_by_duration)
        : [tier.credits],
    ),
  );
  return prices.length ? { low: Math.min(...prices), high: Math.max(...prices) } : null;
}

"use client";
// The models on sale (GET /api/videos/models): the create page lists them for a kind, and the task
// pages name a task's model. The list is asked for once per page load and shared; the create page
// asks again each time it opens, since availability changes.
import { useEffect, useState } from "react";

import { getApi, unwrap, type Schemas } from "./api/client";
import type { Locale } from "./i18n";

export type Model = Schemas["ModelView"];

let cached: Promise<Model[]> | null = null;

/** The models, each kind's default first; `fresh` asks the server again. */
export function loadModels(fresh = false): Promise<Model[]> {
  if (!cached || fresh) {
    const pending = getApi()
      .then((api) => unwrap(api.GET("/api/videos/models")))
      .then((list) => list.models);
    cached = pending;
    pending.catch(() => {
      if (cached === pending) cached = null; // try again on the next call
    });
  }
  return cached;
}

/** The models once loaded; null while loading or when they could not be loaded. */
export function useModels(): Model[] | null {
  const [models, setModels] = useState<Model[] | null>(null);
  useEffect(() => {
    let live = true;
    loadModels().then(
      (list) => live && setModels(list),
      () => undefined, // the pages then show model ids instead of names
    );
    return () => {
      live = false;
    };
  }, []);
  return models;
}

/** A catalog text (a name or a description) in the page's language. */
export function localized(label: Schemas["Label"], locale: Locale): string {
  return label[locale] || label.en;
}

/** The name of the model with this id, or the id itself when the list does not have it. */
export function modelName(models: Model[] | null, id: string, locale: Locale): string {
  const model = models?.find((candidate) => candidate.id === id);
  return model ? localized(model.name, locale) : id;
}

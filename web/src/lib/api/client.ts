// The typed API client (generated from vidgate's OpenAPI document) with the headers every call
// needs: the client key, the access token, and one transparent refresh when a token has expired.
import createClient, { type Client } from "openapi-fetch";

import { apiOrigin, loadConfig, type WebConfig } from "../config";
import { tokens } from "../tokens";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Api = Client<paths>;

/** An API failure with the server's `detail` (a string, or the field errors of a 422). */
export class APIError extends Error {
  constructor(
    public status: number,
    public detail: unknown,
  ) {
    super(describeDetail(detail) || (status === 0 ? "Network error" : `HTTP ${status}`));
    this.name = "APIError";
  }
}

function describeDetail(detail: unknown): string {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const field = Array.isArray(item?.loc) ? item.loc.filter((p: unknown) => p !== "body").join(".") : "";
        return field ? `${field}: ${item?.msg ?? ""}` : String(item?.msg ?? "");
      })
      .join("; ");
  }
  return "";
}

/** How a refresh ended: new tokens; refused (the tokens are gone, the user is signed out); or
 * unavailable for now (a network error, a 5xx, a 429): the tokens stay and a later call tries again. */
export type RefreshOutcome =
  | { kind: "refreshed" }
  | { kind: "refused" }
  | { kind: "unavailable"; status: number; retryAfter: string | null; detail: unknown };

type Unavailable = Extract<RefreshOutcome, { kind: "unavailable" }>;

/** The longest a Retry-After from the refresh endpoint holds back the next attempt, in seconds. */
const MAX_RETRY_AFTER = 60;

let refreshing: Promise<RefreshOutcome> | null = null;
/** After a 429/503 with Retry-After: no new attempt before this time (ms), the same answer instead. */
let blocked: { until: number; outcome: RefreshOutcome } | null = null;

function retryAfterSeconds(header: string | null): number {
  if (!header) return 0;
  const seconds = /^\s*\d+\s*$/.test(header) ? Number(header) : (Date.parse(header) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.max(0, Math.min(seconds, MAX_RETRY_AFTER)) : 0;
}

async function errorDetail(response: Response): Promise<unknown> {
  try {
    return ((await response.json()) as { detail?: unknown })?.detail;
  } catch {
    return undefined;
  }
}

/** The tokens changed in another tab while this one was refreshing: go on with what it left. */
function afterOtherTab(): RefreshOutcome {
  return tokens.access() ? { kind: "refreshed" } : { kind: "refused" };
}

async function refreshOnce(config: WebConfig): Promise<RefreshOutcome> {
  const refresh = tokens.refresh();
  if (!refresh) return { kind: "refused" };
  let response: Response;
  try {
    response = await fetch(`${apiOrigin(config)}/api/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": config.api_key },
      body: JSON.stringify({ refresh_token: refresh }),
    });
  } catch {
    return { kind: "unavailable", status: 0, retryAfter: null, detail: undefined };
  }
  if (response.ok) {
    let pair: Schemas["TokenResponse"];
    try {
      pair = (await response.json()) as Schemas["TokenResponse"];
    } catch {
      return { kind: "unavailable", status: 0, retryAfter: null, detail: undefined };
    }
    if (tokens.refresh() !== refresh) return afterOtherTab();
    tokens.save(pair.access_token, pair.refresh_token);
    return { kind: "refreshed" };
  }
  if (response.status === 401 || response.status === 400 || response.status === 422) {
    // Refused: the refresh token is invalid, used or expired, or the session has ended, unless
    // another tab renewed (or ended) the session meanwhile and this one sent the old token.
    if (tokens.refresh() !== refresh) return afterOtherTab();
    tokens.clear();
    return { kind: "refused" };
  }
  // A server error, a rate limit or anything else: keep the tokens and try again later.
  const retryAfter = response.headers.get("Retry-After");
  const outcome: RefreshOutcome = { kind: "unavailable", status: response.status, retryAfter, detail: await errorDetail(response) };
  const wait = retryAfterSeconds(retryAfter);
  if (wait > 0) blocked = { until: Date.now() + wait * 1000, outcome };
  return outcome;
}

/** Trade the refresh token for a new pair once, however many requests saw the 401 together.
 * Only a refusal (401, or a 400/422 for a malformed token) clears the tokens; after a network
 * error or a server error they stay, and the next call that sees a 401 tries again (not before a
 * Retry-After the server sent). */
export function refreshTokens(config: WebConfig): Promise<RefreshOutcome> {
  if (!refreshing) {
    if (blocked && Date.now() < blocked.until) return Promise.resolve(blocked.outcome);
    blocked = null;
    refreshing = refreshOnce(config).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** What a call answers when its token could not be renewed for now: the refresh's own status
 * (or a network error), so callers show a passing failure rather than a sign-out. */
export function unavailableResponse(outcome: Unavailable): Response {
  if (outcome.status === 0) throw new TypeError("Network error while renewing the session");
  const headers = new Headers({ "Content-Type": "application/json" });
  if (outcome.retryAfter) headers.set("Retry-After", outcome.retryAfter);
  return new Response(JSON.stringify({ detail: unavailableDetail(outcome) }), { status: outcome.status, headers });
}

/** The same failure as an APIError, for callers outside fetch (uploads). */
export function unavailableError(outcome: Unavailable): APIError {
  return outcome.status === 0 ? new APIError(0, "Network error") : new APIError(outcome.status, unavailableDetail(outcome));
}

function unavailableDetail(outcome: Unavailable): unknown {
  return outcome.detail ?? `Your session could not be renewed just now (HTTP ${outcome.status}); please try again.`;
}

/** Headers for a call: the client key always, the access token when signed in. */
export function authHeaders(config: WebConfig): Record<string, string> {
  const headers: Record<string, string> = { "X-API-Key": config.api_key };
  const access = tokens.access();
  if (access) headers.Authorization = `Bearer ${access}`;
  return headers;
}

/** fetch with vidgate's headers; on a 401 for a signed-in call, refresh once and try again. If the
 * refresh could not be made just now, the call fails with the refresh's error and the user stays
 * signed in; only a refused refresh signs out (the 401 is answered as it came). */
export async function authFetch(config: WebConfig, request: Request): Promise<Response> {
  const retry = request.clone();
  const send = (req: Request) => {
    for (const [name, value] of Object.entries(authHeaders(config))) req.headers.set(name, value);
    return fetch(req);
  };
  const sent = tokens.access();
  const response = await send(request);
  if (response.status !== 401 || sent === null || request.url.endsWith("/api/auth/refresh")) {
    return response;
  }
  // Another call renewed the tokens while this one was on its way: just send it again.
  const current = tokens.access();
  if (current !== null && current !== sent && !refreshing) return send(retry);
  const outcome = await refreshTokens(config);
  if (outcome.kind === "refused") return response; // signed out: the tokens are gone
  if (outcome.kind === "unavailable") return unavailableResponse(outcome);
  return send(retry);
}

let client: Promise<Api> | null = null;

export function getApi(): Promise<Api> {
  if (!client) {
    client = loadConfig().then((config) =>
      createClient<paths>({
        baseUrl: apiOrigin(config),
        fetch: (request: Request) => authFetch(config, request),
      }),
    );
    client.catch(() => {
      client = null;
    });
  }
  return client;
}

/** The data of an openapi-fetch result, or an APIError carrying the server's detail. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (error) {
    throw new APIError(0, String(error));
  }
  if (!result.response.ok) {
    const body = result.error as { detail?: unknown } | undefined;
    throw new APIError(result.response.status, body?.detail);
  }
  return result.data as T;
}

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

let refreshing: Promise<boolean> | null = null;

/** Trade the refresh token for a new pair once, however many requests saw the 401 together. */
export function refreshTokens(config: WebConfig): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      const refresh = tokens.refresh();
      if (!refresh) return false;
      try {
        const response = await fetch(`${apiOrigin(config)}/api/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-API-Key": config.api_key },
          body: JSON.stringify({ refresh_token: refresh }),
        });
        if (!response.ok) {
          // Only a refusal signs out; a network or server error leaves the tokens for later.
          if (response.status === 401 || response.status === 400) tokens.clear();
          return false;
        }
        const pair = (await response.json()) as Schemas["TokenResponse"];
        tokens.save(pair.access_token, pair.refresh_token);
        return true;
      } catch {
        return false;
      }
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** Headers for a call: the client key always, the access token when signed in. */
export function authHeaders(config: WebConfig): Record<string, string> {
  const headers: Record<string, string> = { "X-API-Key": config.api_key };
  const access = tokens.access();
  if (access) headers.Authorization = `Bearer ${access}`;
  return headers;
}

/** fetch with vidgate's headers; on a 401 for a signed-in call, refresh once and try again. */
export async function authFetch(config: WebConfig, request: Request): Promise<Response> {
  const retry = request.clone();
  const send = (req: Request) => {
    for (const [name, value] of Object.entries(authHeaders(config))) req.headers.set(name, value);
    return fetch(req);
  };
  const hadToken = tokens.access() !== null;
  const response = await send(request);
  if (response.status !== 401 || !hadToken || request.url.endsWith("/api/auth/refresh")) {
    return response;
  }
  if (!(await refreshTokens(config))) {
    tokens.clear();
    return response;
  }
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

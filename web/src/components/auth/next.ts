// Where to go after signing in: the `next` the sign-in page was given, kept across Google's
// redirect in sessionStorage. Only paths of this site are followed (no open redirect).
const KEY = "vidgate.auth.next";

/** `next` if it is a path on this site ("/task/?id=…"), else "/". */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if (next.startsWith("/login")) return "/";
  return next;
}

export function rememberNext(next: string): void {
  try {
    sessionStorage.setItem(KEY, safeNext(next));
  } catch {
    // Private mode without storage: the user lands on the dashboard instead.
  }
}

/** The remembered `next`, forgotten once read. */
export function takeNext(): string {
  try {
    const next = sessionStorage.getItem(KEY);
    sessionStorage.removeItem(KEY);
    return safeNext(next);
  } catch {
    return "/";
  }
}

/** Where Google sends the browser back to: the callback page on this origin. */
export function googleRedirectUri(): string {
  return `${window.location.origin}/auth/google/`;
}

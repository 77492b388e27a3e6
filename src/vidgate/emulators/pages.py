"""The HTML frame of the emulators' pages (consent, checkout, pay): one look, strict headers."""

from __future__ import annotations

import html
import secrets

from fastapi.responses import HTMLResponse

NO_STORE = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"}

_BASE_STYLE = """body {{ font-family: system-ui, sans-serif; max-width: {width}; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; }}
.error {{ color: #b00020; font-weight: 600; }}
code {{ word-break: break-all; }}"""


def html_page(
    title: str,
    body: str,
    *,
    style: str = "",
    status_code: int = 200,
    script: str = "",
    width: str = "32rem",
    form_action_anywhere: bool = False,
) -> HTMLResponse:
    """A complete page around `body` (already escaped HTML). Pages are never cached or framed
    (clickjacking), load nothing from elsewhere, and run only `script`, by nonce."""
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    script_tag = ""
    if script:
        nonce = secrets.token_urlsafe(16)
        csp += f"; script-src 'nonce-{nonce}'"
        script_tag = f'\n<script nonce="{nonce}">{script}</script>'
    if form_action_anywhere:  # a form that posts and then redirects to the merchant's site
        csp += "; form-action *"
    css = _BASE_STYLE.format(width=width) + ("\n" + style.strip() if style.strip() else "")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
{css}
</style>
</head>
<body>
<main>{body}
</main>{script_tag}
</body>
</html>
"""
    headers = {**NO_STORE, "Content-Security-Policy": csp, "X-Frame-Options": "DENY"}
    return HTMLResponse(page, status_code=status_code, headers=headers)

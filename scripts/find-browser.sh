#!/usr/bin/env bash
# Print the path of a Chromium the browser tests can drive, installing one when there is none.
#
# Looked for, in order: $CHROMIUM_PATH; a Chromium on PATH (the distribution's); one Playwright
# installed earlier. When none is there it installs one the way the machine allows: as root with
# apt-get, Debian's `chromium` package (with a font for the Chinese pages); otherwise Playwright's
# own download (`npx playwright install chromium`). What it does goes to stderr, one line each;
# stdout carries only the path.
set -euo pipefail

say() { echo "find-browser: $*" >&2; }

usable() { [ -n "${1:-}" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

playwright_chromium() {
  local root="${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}" found
  for found in "$root"/chromium-*/chrome-linux*/chrome "$root"/chromium_headless_shell-*/chrome-linux*/headless_shell; do
    if usable "$found"; then echo "$found"; return 0; fi
  done
  return 1
}

installed() {
  local name path
  if usable "${CHROMIUM_PATH:-}"; then echo "$CHROMIUM_PATH"; return 0; fi
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    path="$(command -v "$name" 2>/dev/null || true)"
    if usable "$path"; then echo "$path"; return 0; fi
  done
  playwright_chromium
}

chinese_font() {
  # The zh pages' screenshots need a CJK font; install one where we can, never fail for it.
  if command -v fc-list >/dev/null && fc-list :lang=zh | grep -q .; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing a Chinese font (fonts-wqy-zenhei) for the zh pages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null 2>&1 \
      || say "could not install fonts-wqy-zenhei; Chinese text may show as boxes"
  fi
}

if [ -n "${CHROMIUM_PATH:-}" ] && ! usable "$CHROMIUM_PATH"; then
  say "CHROMIUM_PATH=$CHROMIUM_PATH does not run; looking for another browser"
fi
if path="$(installed)"; then
  chinese_font
  echo "$path"
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "no Chromium found: installing the distribution's package (apt-get install chromium)"
  apt-get update -qq >&2 || true
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-browser >/dev/null 2>&1; then
    chinese_font
    if path="$(installed)"; then echo "$path"; exit 0; fi
  fi
  say "apt-get could not install chromium"
fi

if command -v npx >/dev/null; then
  say "no Chromium found: downloading Playwright's (npx playwright install chromium)"
  if (cd "$(dirname "$0")/../web" && npx --no-install playwright install chromium >&2); then
    if path="$(playwright_chromium)"; then echo "$path"; exit 0; fi
  fi
fi

say "no browser for the browser tests: install Chromium (e.g. 'sudo apt-get install chromium')"
say "or set CHROMIUM_PATH to a Chromium or Chrome binary"
exit 1

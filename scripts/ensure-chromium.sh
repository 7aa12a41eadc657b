#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (Playwright drives it;
# Playwright's own browser download is not used). Installs it with apt-get when possible.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
msg="Chromium is missing: install Debian's 'chromium' package (sudo apt-get install chromium)."
if [ "${CI:-}" = "true" ]; then
  echo "error: $msg" >&2
  exit 1
fi
echo "warning: $msg The browser tests will be skipped." >&2

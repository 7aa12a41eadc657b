#!/usr/bin/env bash
# Make sure the Node tools of the tests (axe-core, pinned in package-lock.json) are installed
# in node_modules/. Runs `npm ci` only when node_modules/axe-core is missing, older than
# package-lock.json, or not the locked version; otherwise it does nothing (and needs no npm).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=package-lock.json
INSTALLED=node_modules/axe-core/package.json

locked_version() {
  # The version package-lock.json pins for axe-core (lockfileVersion 2 or 3).
  sed -n '/"node_modules\/axe-core": {/,/}/s/.*"version": "\([^"]*\)".*/\1/p' "$LOCK" | head -n 1
}

installed_version() {
  sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$INSTALLED" | head -n 1
}

if [ -f "$INSTALLED" ] && [ ! "$LOCK" -nt "$INSTALLED" ] \
  && [ "$(installed_version)" = "$(locked_version)" ]; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's nodejs and npm for the widget's accessibility tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if ! command -v npm >/dev/null 2>&1; then
  msg="npm is missing: install Node.js 18 or later with npm (sudo apt-get install nodejs npm)"
  msg="$msg, then run $0. Until node_modules/axe-core is installed the widget's"
  msg="$msg accessibility tests (tests/browser/test_widget.py) fail."
  echo "error: $msg" >&2
  # In CI that is a failure; on a workstation the rest of the suite still runs.
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi

echo "Installing the tests' Node tools (npm ci: axe-core $(locked_version))…"
npm ci --no-audit --no-fund
# Some npm versions extract files with the tarballs' fixed 1985 dates: mark the install as
# newer than the lock file so the next run does not reinstall.
touch "$INSTALLED"

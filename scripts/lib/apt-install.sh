# Sourced by scripts/ensure-postgres.sh and scripts/ensure-redis.sh: install a Debian package
# that ships a server without letting it start its own instance (the tests run private ones).
# The caller defines `say MESSAGE…` and `unavailable MESSAGE…` (which exits) first.

is_root() { [ "$(id -u)" = 0 ]; }

# install_server_package PACKAGE WHAT: WHAT names what is missing in the messages.
install_server_package() {
  local package=$1 what=$2
  if ! is_root; then
    unavailable "$what is not installed; run this script as root, or install it:" \
      "sudo apt-get install $package."
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    unavailable "$what is not installed and there is no apt-get to install it with."
  fi
  say "installing Debian's $package…"
  # Keep the package from starting its default server. Docker's Debian images already have
  # such a policy; elsewhere one is put in place for the install.
  local policy=/usr/sbin/policy-rc.d
  local own_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=$policy
    trap 'rm -f "$own_policy"' EXIT
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$package"; } >&2; then
    unavailable "apt-get could not install $package."
  fi
  if [ -n "$own_policy" ]; then
    rm -f "$own_policy"
    trap - EXIT
  fi
}

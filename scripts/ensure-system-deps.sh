#!/usr/bin/env bash
# Installs the system programs the test suite needs, or fails naming what is missing.
# Tests never silently skip because a binary is absent.
#
# With --demo: installs only what `make demo` needs to narrate with speech (espeak-ng).
# The demo still runs without it (a tone melody is its declared fallback, and it says
# so), so in this mode a missing program is a warning, not a failure.
set -euo pipefail

mode=test
if [ "${1:-}" = "--demo" ]; then
  mode=demo
fi

need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)  # the demo's narration
if [ "$mode" = test ]; then
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)  # dashboard browser tests
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
install() {
  echo "installing missing system packages: ${need[*]}" >&2
  apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$mode" = test ]; then
    install
  elif ! install; then
    echo "warning: installing ${need[*]} failed, so the demo narrates with a tone melody" >&2
  fi
elif [ "$mode" = demo ]; then
  echo "warning: ${need[*]} is not installed, so the demo narrates with a tone melody" >&2
  echo "         for speech, install it (Debian/Ubuntu: sudo apt-get install -y ${need[*]})" >&2
else
  echo "error: the test suite needs these programs on PATH: ${need[*]}" >&2
  echo "       install them (Debian/Ubuntu: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi

#!/usr/bin/env bash
# Installs the system programs the test suite needs, or fails naming what is missing.
# Tests never silently skip because a binary is absent.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # dashboard browser tests

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing missing system packages: ${need[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "error: the test suite needs these programs on PATH: ${need[*]}" >&2
  echo "       install them (Debian/Ubuntu: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi

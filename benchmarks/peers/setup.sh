#!/usr/bin/env bash
# Create one isolated virtualenv per peer under benchmarks/.peers/<peer>/ from PyPI, with
# pinned versions. The project's own venv never gets a peer installed: their redis-py pins
# differ (arq's in particular), and a benchmark must not change what the project runs on.
#
# Usage: benchmarks/peers/setup.sh [peer ...]   (default: every peer)
# Idempotent: a venv whose pinned requirement line has not changed is left as it is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
peers_dir="$root/benchmarks/.peers"
python_bin="${PYTHON:-python3}"

declare -A requirements=(
  [celery]="celery[redis]==5.7.0"
  [rq]="rq==2.12.0"
  [dramatiq]="dramatiq[redis]==2.2.1"
  [bullmq]="bullmq==3.4.4"
  [arq]="arq==0.28.0"
)

selected=("$@")
if [ ${#selected[@]} -eq 0 ]; then
  selected=(celery rq dramatiq bullmq arq)
fi

for peer in "${selected[@]}"; do
  requirement="${requirements[$peer]:-}"
  if [ -z "$requirement" ]; then
    echo "unknown peer '$peer' (known: ${!requirements[*]})" >&2
    exit 2
  fi
  venv="$peers_dir/$peer"
  stamp="$venv/.requirement"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$requirement" ]; then
    echo "[$peer] up to date ($requirement)"
    continue
  fi
  echo "[$peer] creating $venv with $requirement"
  rm -rf "$venv"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement"
  echo "$requirement" > "$stamp"
done

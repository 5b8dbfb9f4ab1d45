#!/usr/bin/env bash
# Build the wheel and the sdist, check their metadata, install the wheel WITHOUT extras
# into a fresh virtualenv and use it as a new user would: --help, graph, serve + /health,
# and demo (which must say how to install the demo extra and exit 2).
#
#   bash scripts/package-check.sh [PYTHON]     # PYTHON: has build and twine (default .venv)
#
# Everything goes into one temporary directory, removed at exit; the server it starts is
# stopped by its pid. Packages come from the configured index through pip's cache.
set -euo pipefail

PYTHON=${1:-.venv/bin/python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scenarist-package-check.XXXXXX")
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf 'package-check: %s\n' "$*"; }
die() { printf 'package-check: FAILED: %s\n' "$*" >&2; exit 1; }

step "building the sdist and the wheel"
"$PYTHON" -m build --sdist --wheel --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; die "python -m build"; }
WHEEL=$(ls "$WORK"/dist/*.whl)
SDIST=$(ls "$WORK"/dist/*.tar.gz)

step "checking their metadata: $(basename "$WHEEL") $(basename "$SDIST")"
"$PYTHON" -m twine check --strict "$WHEEL" "$SDIST"

step "installing the wheel, no extras, into a fresh virtualenv"
BASE_PYTHON=$("$PYTHON" -c 'import sys; print(sys._base_executable)')
"$BASE_PYTHON" -m venv "$WORK/venv"
VENV_BIN="$WORK/venv/bin"
"$VENV_BIN/python" -m pip install --quiet --disable-pip-version-check "$WHEEL"
if "$VENV_BIN/python" -c 'import imageio_ffmpeg' 2>/dev/null \
    || "$VENV_BIN/python" -c 'import PIL' 2>/dev/null; then
    die "the demo extra's packages were installed without asking for the extra"
fi
# Run from the temporary directory, so that nothing is imported from the checkout.
cd "$WORK"

step "scenarist --help"
"$VENV_BIN/scenarist" --help >"$WORK/help.txt" || die "scenarist --help"
grep -q "serve" "$WORK/help.txt" || die "scenarist --help does not list serve"

step "scenarist graph CreateVideo --param description=x"
GRAPH=$("$VENV_BIN/scenarist" graph CreateVideo --param description=x) \
    || die "scenarist graph"
[[ "$GRAPH" == "CreateVideo: 9 tasks in 4 levels"* ]] || die "unexpected graph: $GRAPH"

step "scenarist serve + GET /health"
PORT=$("$VENV_BIN/python" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV_BIN/scenarist" serve --port "$PORT" --store "sqlite:///$WORK/scenarist.db" \
    >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
"$VENV_BIN/python" - "$PORT" "$SERVER_PID" <<'EOF' || { cat "$WORK/serve.log" >&2; die "/health"; }
import json, os, sys, time, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            health = json.load(response)
        break
    except OSError:
        os.kill(pid, 0)  # the server died: stop waiting (raises ProcessLookupError)
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
assert health["status"] == "healthy", health
print(f"package-check: /health answered {health}")
EOF
kill "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""

step "scenarist demo without the demo extra"
set +e
"$VENV_BIN/scenarist" demo >"$WORK/demo.out" 2>"$WORK/demo.err"
DEMO_EXIT=$?
set -e
[[ $DEMO_EXIT -eq 2 ]] || { cat "$WORK/demo.err" >&2; die "demo exited $DEMO_EXIT, not 2"; }
grep -q "pip install 'scenarist\[demo\]'" "$WORK/demo.err" || die "demo gave no install hint"
if grep -q "Traceback" "$WORK/demo.err"; then die "demo printed a traceback"; fi

step "ok"

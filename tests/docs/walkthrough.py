"""The README's runnable blocks, and the one bash script that runs them in order.

A fenced `bash`/`sh` block preceded by an HTML comment is part of the walkthrough:

    <!-- walkthrough -->               run it; every command and every HTTP answer must succeed
    <!-- walkthrough: expect 409 -->   run it; its HTTP answers must be exactly 409
    <!-- walkthrough: background -->  start its one command in the background (another
                                       terminal, for a reader) until the section ends

The blocks run in one shell, top to bottom, so a variable set in one block is seen by the
next, as in a reader's terminal. `curl` is wrapped to check each answer's status.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

MARKER = re.compile(r"^<!--\s*walkthrough(?::\s*(?P<mode>.+?))?\s*-->\s*$")
FENCE_OPEN = re.compile(r"^```(?:bash|sh)\s*$")
README_URL = "http://127.0.0.1:8001"


@dataclass(frozen=True, slots=True)
class Block:
    line: int  # 1-based line of the block's first command in the README
    section: str  # the `## ` heading it is under
    mode: str  # "run", "background" or "expect <status>"
    code: str

    @property
    def expected_status(self) -> str:
        return self.mode.split()[1] if self.mode.startswith("expect ") else ""


def walkthrough_blocks(readme: str) -> list[Block]:
    lines = readme.splitlines()
    blocks: list[Block] = []
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        marker = MARKER.match(line)
        index += 1
        if marker is None:
            continue
        if index >= len(lines) or not FENCE_OPEN.match(lines[index]):
            raise ValueError(f"README line {index}: a walkthrough marker must precede a bash block")
        end = lines.index("```", index + 1)
        mode = (marker.group("mode") or "run").strip()
        if mode not in ("run", "background") and not re.fullmatch(r"expect \d{3}", mode):
            raise ValueError(f"README line {index}: unknown walkthrough mode {mode!r}")
        code = "\n".join(lines[index + 1 : end])
        blocks.append(Block(line=index + 2, section=section, mode=mode, code=code))
        index = end + 1
    return blocks


PRELUDE = r"""set -euo pipefail
WALKTHROUGH_EXPECT=""
BACKGROUND_PIDS=()
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || { rm -f "$body"; return 1; }
  cat "$body"
  echo
  rm -f "$body"
  if [ -n "$WALKTHROUGH_EXPECT" ] && [ "$status" != "$WALKTHROUGH_EXPECT" ]; then
    echo "::http $status, expected $WALKTHROUGH_EXPECT: curl $*" >&2
    return 22
  fi
  if [ -z "$WALKTHROUGH_EXPECT" ] && [ "$status" -ge 400 ]; then
    echo "::http $status: curl $*" >&2
    return 22
  fi
}
stop_background() {
  local pid
  for pid in "${BACKGROUND_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BACKGROUND_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  BACKGROUND_PIDS=()
}
trap stop_background EXIT
"""


def walkthrough_script(blocks: list[Block], url: str) -> str:
    """One bash script: each block between `::start N` / `::ok N` markers, background
    blocks stopped when their section ends."""
    parts = [PRELUDE]
    for number, block in enumerate(blocks):
        code = block.code.replace(README_URL, url)
        parts.append(f'echo "::start {number} (README line {block.line}) at $(date +%T.%N)"')
        if block.mode == "background":
            words = shlex.split(code, comments=True)
            if not words or "\n" in code.strip():
                raise ValueError(f"README line {block.line}: a background block is one command")
            parts.append(f"{shlex.join(words)} > background-{number}.log 2>&1 &")
            parts.append("BACKGROUND_PIDS+=($!)")
        else:
            parts.append(f"WALKTHROUGH_EXPECT={shlex.quote(block.expected_status)}")
            parts.append(code)
            parts.append('WALKTHROUGH_EXPECT=""')
        parts.append(f"echo '::ok {number}'")
        following = blocks[number + 1] if number + 1 < len(blocks) else None
        if following is None or following.section != block.section:
            parts.append("stop_background")
    return "\n".join(parts) + "\n"

"""W3C trace context (`traceparent`) and the ids of task attempt spans.

A scenario is one trace: its submit span's context is stored with the scenario. Each task
attempt is a span whose id is derived from the task id and the attempt's lease token (a
token is `<nonce>.<attempt>`, unique per lease, also across a scenario retry), so the API
process that hands out a lease can give the worker the attempt's `traceparent` and any API
process can later record the span when the attempt ends, with nothing more stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: int
    span_id: int
    flags: int = SAMPLED

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)

    def header(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"

    def child(self, span_id: int) -> TraceParent:
        return TraceParent(self.trace_id, span_id, self.flags)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """A valid traceparent header (version 00, or a later one read as 00), else None: an
    invalid one is ignored, as the W3C recommendation says, and a new trace starts."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None or match.group(1) == "ff":
        return None
    trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
    if not trace_id or not span_id:
        return None
    return TraceParent(trace_id, span_id, int(match.group(4), 16))


def attempt_span_id(task_id: str, lease_token: str) -> int:
    """The span id of the attempt that holds (or held) `lease_token`: 64 bits of a hash,
    never 0 (an invalid span id)."""
    digest = hashlib.sha256(f"{task_id}\n{lease_token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1

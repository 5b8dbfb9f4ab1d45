"""The dashboard's "Rerun from here" on a task (decision 60): a plain form on the task's
panel with an optional JSON override of its payload; the answer is the scenario page with
a fixed notice, whose graph then follows the new runs live."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request, Response

from scenarist.core.errors import ConflictError, ParamError
from scenarist.dashboard.access import require_action, require_same_origin
from scenarist.dashboard.actions import back_to
from scenarist.dashboard.context import Ctx, Seen

RERUN_FORM_MAX_BYTES = 64 * 1024  # the override textarea and a flag, urlencoded
# The one path besides sign-in whose body may be a form (api/limits.py lets it through).
RERUN_FORM_PATH = re.compile(r"/ui/scenarios/[^/]+/tasks/[^/]+/rerun")


def add_rerun_route(router: APIRouter) -> None:
    @router.post("/scenarios/{scenario_id}/tasks/{name}/rerun")
    async def rerun(
        request: Request, scenario_id: str, name: str, ctx: Ctx, viewer: Seen
    ) -> Response:
        require_same_origin(request)
        require_action(viewer)
        form = await read_form(request)
        override = parse_override(form.get("payload", ""))
        if override is None:
            return back_to_task(scenario_id, name, "rerun-bad-override")
        try:
            await ctx.orchestrator.rerun(
                scenario_id,
                [name],
                payloads={name: override} if override else {},
                cancel_running=form.get("cancel_running") == "on",
            )
        except ParamError as exc:
            unknown = exc.field == "tasks"
            return back_to_task(
                scenario_id, name, "rerun-unknown" if unknown else "rerun-bad-override"
            )
        except ConflictError as exc:
            processing = "processing" in exc.message
            return back_to_task(
                scenario_id, name, "rerun-processing" if processing else "rerun-refused"
            )
        return back_to_task(scenario_id, name, "rerun")


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form's last value per name (the body guard capped its size)."""
    body = await request.body()
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


def parse_override(text: str) -> dict[str, Any] | None:
    """ "" -> no override ({}); a JSON object -> it; anything else -> None (refused)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def back_to_task(scenario_id: str, name: str, notice: str) -> Response:
    response = back_to(scenario_id, notice)
    response.headers["location"] += f"&task={quote(name, safe='')}"
    return response

"""The served OpenAPI document as schemathesis should read it.

The document types the event stream as a `text/event-stream` string (what a generated
client should read; OpenAPI before 3.2 cannot describe a stream's items), with each
event's fields in the `x-event-schema` extension. Schemathesis reads a pre-3.2 stream
`schema` as each event's schema, so it is handed the extension there: every streamed
event is still checked, against the schema the document publishes for it."""

from __future__ import annotations

import copy
from typing import Any

import schemathesis
from fastapi import FastAPI

EVENTS = ("/scenarios/{scenario_id}/events", "get")


def load_served_schema(app: FastAPI) -> Any:
    spec = copy.deepcopy(app.openapi())
    path, method = EVENTS
    stream = spec["paths"][path][method]["responses"]["200"]["content"]["text/event-stream"]
    assert stream["schema"]["type"] == "string"
    stream["schema"] = stream.pop("x-event-schema")
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.app = app
    loaded.location = "/openapi.json"
    return loaded

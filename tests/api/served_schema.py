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
from schemathesis.config import SchemathesisConfig

EVENTS = ("/scenarios/{scenario_id}/events", "get")
# Schema-invalid requests must be refused with a 4xx. Schemathesis' default list lacks 413,
# which is the right answer when the invalid part is the size: a batch of more items than
# allowed, generated with large items, is also over the body limit and refused unread.
REJECTION_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]
REJECTION_STATUSES += ["428", "429", "5xx"]  # 5xx here only as schemathesis' default; the
# not-a-server-error check still fails every 5xx
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": REJECTION_STATUSES}}}


def load_served_schema(app: FastAPI) -> Any:
    spec = copy.deepcopy(app.openapi())
    path, method = EVENTS
    stream = spec["paths"][path][method]["responses"]["200"]["content"]["text/event-stream"]
    assert stream["schema"]["type"] == "string"
    stream["schema"] = stream.pop("x-event-schema")
    loaded = schemathesis.openapi.from_dict(spec, config=SchemathesisConfig.from_dict(CONFIG))
    loaded.app = app
    loaded.location = "/openapi.json"
    return loaded

"""The step cache's rules in core: the `cache` key of the catalog (syntax, file:line
errors, what a plan carries) and the key's digests (canonical, and changed by each of
its parts)."""

from __future__ import annotations

import pytest

from scenarist.core.catalog import parse_catalog
from scenarist.core.catalog_dynamic import DEFAULT_CACHE_TTL_SECONDS
from scenarist.core.errors import CatalogError
from scenarist.core.step_cache import base_digest, cache_key, result_digest

CATALOG = """\
Cached:
  tasks:
    - id: prompt
      service: text-service
      cache: true
      payload: {text: "hi"}
    - id: image
      service: image-service
      depends_on: [prompt]
      cache: {ttl_seconds: 60}
    - id: video
      service: video-service
      depends_on: [image]
      cache: false
"""


def test_cache_true_takes_the_default_lifetime_and_a_plan_carries_it() -> None:
    catalog = parse_catalog(CATALOG, "ok.yml")
    tasks = {t.id: t for t in catalog.get("Cached").tasks}
    assert tasks["prompt"].cache_ttl == DEFAULT_CACHE_TTL_SECONDS
    assert tasks["image"].cache_ttl == 60
    assert tasks["video"].cache_ttl is None
    assert tasks["image"].describe()["cache"] == {"ttl_seconds": 60}
    planned = {t.name: t.cache_ttl for t in catalog.plan("Cached", {}).tasks}
    assert planned == {"prompt": DEFAULT_CACHE_TTL_SECONDS, "image": 60, "video": None}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes please", "'cache' must be true, false or {ttl_seconds: N}, got 'yes please'"),
        ("{ttl: 5}", "'cache' must be true, false or {ttl_seconds: N}, got {'ttl': 5}"),
        ("{ttl_seconds: 0}", "'cache.ttl_seconds' must be a positive integer, got 0"),
        ("{ttl_seconds: 1.5}", "'cache.ttl_seconds' must be a positive integer, got 1.5"),
    ],
)
def test_a_bad_cache_key_names_file_line_and_task(value: str, message: str) -> None:
    text = f"Bad:\n  tasks:\n    - id: a\n      service: s\n      cache: {value}\n"
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "bad.yml")
    assert [str(e) for e in caught.value.errors] == [
        f"bad.yml:5, scenario 'Bad', task 'a': {message}"
    ]


def test_the_digests_are_canonical_and_each_part_changes_the_key() -> None:
    assert base_digest("s", {"a": 1, "b": [1, {"c": "é"}]}) == base_digest(
        "s", {"b": [1, {"c": "é"}], "a": 1}
    )
    base = base_digest("s", {"a": 1})
    parents = [result_digest("ref", {"x": 1}), result_digest(None, None)]
    key = cache_key(base, parents)
    assert len(key) == 40
    assert key != cache_key(base_digest("t", {"a": 1}), parents)
    assert key != cache_key(base_digest("s", {"a": 2}), parents)
    assert key != cache_key(base, [parents[0], result_digest(None, {})])
    assert key != cache_key(base, parents[::-1])
    assert key != cache_key(base, parents[:1])

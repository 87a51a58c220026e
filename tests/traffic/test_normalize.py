"""The orjson shortcuts in traffic.normalize give the verdicts and values of the exact walk."""

from __future__ import annotations

import json
from typing import Any

import pytest

from logharbor.collector.redaction import DEFAULT_MASKED_KEYS, normalize_keys
from logharbor.traffic import normalize
from logharbor.traffic.normalize import IngestConfig

KEYS = normalize_keys(DEFAULT_MASKED_KEYS)
CONFIG = IngestConfig(masked_keys=KEYS, body_cap_bytes=64, body_preview_chars=20)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


CASES: list[Any] = [
    {"a": 1, "b": [1.5, "x", True]},
    {"a": None},
    {"a": "null"},
    {"a": float("nan")},
    [float("inf")],
    {"k": "\ud800"},
    {"\udc00": 1},
    {"a": "x\x00y"},
    {"a\x00": 1},
    {"a": "\\u0000 literally"},
    2**70,
    nested(64),
    nested(65),
    {"deep": nested(63)},
    {"deep": nested(64)},
    "plain text",
    "",
]


def verdict(fn: Any, value: Any, **kw: Any) -> str | None:
    try:
        fn(value, **kw)
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("allow_nul", [False, True])
@pytest.mark.parametrize("value", CASES, ids=range(len(CASES)))
def test_quick_check_agrees_with_the_walk(value: Any, allow_nul: bool) -> None:
    exact = verdict(normalize.check_json, value, allow_nul=allow_nul)
    assert verdict(normalize.checked_json, value, allow_nul=allow_nul) == exact
    if exact is None:
        compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        assert json.loads(normalize.checked_json(value, allow_nul=allow_nul)) == json.loads(compact)


MASK_CASES: list[Any] = [
    {"Authorization": "Bearer x", "accept": "*/*"},
    {"nested": {"PASSWORD": "p"}, "n": [1, 2]},
    [["Cookie", "a=b"], ["accept", "x"]],
    {"TO\u212aEN": "kelvin sign lowers to token"},
    '{"token": "t", "x": 1}',
    "token=abc&x=1",
    {"harmless": "value", "list": [{"a": 1}]},
    {"x": "y" * 200},
    # The key walk (_holds_masked_key) against mask_document's own walk:
    {"token": None, "a": [None, {"b": None}]},
    {"list": [{"ok": 1}, [{"secret": "s"}]]},
    [["x-note", {"password": "p"}], ["accept", None]],
    [["Set-Cookie", None], ["accept", "x"]],
    [["only", "pairs"], "not a pair"],
    [{"api_key": "k"}],
    [],
    {},
    {"wrapper": [*nested(30), {"client_secret": "deep"}]},
]


@pytest.mark.parametrize("value", MASK_CASES, ids=range(len(MASK_CASES)))
def test_documents_and_bodies_are_masked_and_sized_as_compact_json(value: Any) -> None:
    masked = normalize.mask_document(value, KEYS)
    assert normalize.prepare_document(value, CONFIG) == masked
    body = normalize.prepare_body(value, CONFIG)
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    raw = masked if isinstance(masked, str) else json.dumps(masked, **compact)
    assert body.size == len(raw.encode())
    assert body.truncated == (body.size > 64)
    stored = raw.encode()[:64].decode(errors="ignore") if body.truncated else masked
    assert body.text is not None and json.loads(body.text) == stored
    assert body.text == json.dumps(stored, **compact)
    assert body.preview == raw[:20]


def test_document_limit_counts_the_compact_json_the_column_stores() -> None:
    # Compact JSON at the limit, json.dumps' spaced form (", " and ": ") over it: accepted.
    items = normalize.MAX_DOCUMENT_BYTES // 12
    value = {f"k{i:05d}": 1 for i in range(items)}
    compact = len(json.dumps(value, separators=(",", ":")))
    assert compact <= normalize.MAX_DOCUMENT_BYTES < len(json.dumps(value))
    assert normalize.prepare_document(value, CONFIG) == value
    # One byte over, compact: refused.
    value["x" * (normalize.MAX_DOCUMENT_BYTES - compact + 1 - 5)] = 1
    assert len(json.dumps(value, separators=(",", ":"))) == normalize.MAX_DOCUMENT_BYTES + 1
    with pytest.raises(ValueError, match="at most"):
        normalize.prepare_document(value, CONFIG)

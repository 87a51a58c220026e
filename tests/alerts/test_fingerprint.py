"""Fingerprints are stable and group what a human would call the same error."""

from __future__ import annotations

from fixtures.records import event
from logharbor.alerts import fingerprint

SOURCE = "0190f1a2-0000-7000-8000-000000000001"


def test_pathname_ids_become_placeholders() -> None:
    assert fingerprint.template_pathname("/users/42") == "/users/:id"
    assert (
        fingerprint.template_pathname("/orders/0190f1a2-3b4c-7d5e-8f60-718293a4b5c6/items")
        == "/orders/:id/items"
    )
    assert fingerprint.template_pathname("/files/deadbeefdeadbeef00?x=1") == "/files/:id"
    assert fingerprint.template_pathname("/v1/health") == "/v1/health"
    assert fingerprint.template_pathname("") == "/"


def test_message_comes_from_json_or_first_line_without_numbers() -> None:
    assert fingerprint.normalize_message('{"message": "User 42 not found"}') == "User <n> not found"
    assert fingerprint.normalize_message('{"error": {"message": "Timeout 30s"}}') == "Timeout <n>s"
    assert (
        fingerprint.normalize_message("\n  KeyError: 'id' at 0x7f3a2b1c9d8e\nTraceback...")
        == "KeyError: 'id' at <hex>"
    )
    assert (
        fingerprint.normalize_message("order 0190f1a2-3b4c-7d5e-8f60-718293a4b5c6 failed")
        == "order <uuid> failed"
    )
    assert fingerprint.normalize_message(None) == ""
    assert len(fingerprint.normalize_message("x" * 1000)) == fingerprint.MESSAGE_CHARS


def test_same_problem_same_fingerprint_different_problem_different() -> None:
    a = fingerprint.of_event(event(SOURCE, pathname="/users/1", preview='{"message":"User 1 x"}'))
    b = fingerprint.of_event(event(SOURCE, pathname="/users/2", preview='{"message":"User 2 x"}'))
    core = fingerprint.of_event(
        event(SOURCE, kind="core", pathname="/users/:id", preview='{"message":"User 9 x"}')
    )
    assert a == b == core
    assert (
        fingerprint.of_event(event(SOURCE, status=502))[0] != fingerprint.of_event(event(SOURCE))[0]
    )
    assert (
        fingerprint.of_event(event(SOURCE, method="POST"))[0]
        != fingerprint.of_event(event(SOURCE))[0]
    )
    other_source = "0190f1a2-0000-7000-8000-000000000002"
    assert fingerprint.of_event(event(other_source))[0] != fingerprint.of_event(event(SOURCE))[0]


def test_fingerprint_is_a_documented_hash_that_does_not_drift() -> None:
    # sha256("v1\n<source>\nGET\n/users/:id\n500\nUser <n> exploded"): changing the rules must
    # bump VERSION instead of silently regrouping everyone's exceptions.
    import hashlib

    material = f"v1\n{SOURCE}\nGET\n/users/:id\n500\nUser <n> exploded"
    expected = hashlib.sha256(material.encode()).hexdigest()
    assert fingerprint.of_event(event(SOURCE))[0] == expected

"""An app's exception as the record's ``exception``: names, frames, caps, masking, no locals."""

from __future__ import annotations

import gc
import json
import sys
import weakref
from typing import Any

from logharbor.collector.exceptions import (
    MAX_FRAMES,
    MAX_MESSAGE_CHARS,
    MAX_STACKTRACE_BYTES,
    MESSAGE_CUT,
    STACKTRACE_CUT,
    capture_exception,
    exception_info,
    mask_exception,
    type_name,
)
from logharbor.collector.redaction import DEFAULT_MASKED_KEYS, normalize_keys

KEYS = normalize_keys(DEFAULT_MASKED_KEYS)


class Payments:
    class Failed(Exception):
        pass


def caught(function: Any, *args: Any) -> BaseException:
    try:
        function(*args)
    except BaseException as error:
        return error
    raise AssertionError("did not raise")


def outer() -> None:
    middle()


def middle() -> None:
    inner()


RAISE_LINE = sys._getframe().f_lineno + 4  # the raise below


def inner() -> None:
    raise Payments.Failed("card declined")


def test_type_names_and_frames_innermost_last() -> None:
    assert type_name(ValueError) == "ValueError"
    assert type_name(Payments.Failed) == f"{__name__}.Payments.Failed"
    assert type_name(json.JSONDecodeError) == "json.decoder.JSONDecodeError"
    info = exception_info(capture_exception(caught(outer)), KEYS)
    assert info["type"] == f"{__name__}.Payments.Failed"
    assert info["message"] == "card declined"
    functions = [frame["function"] for frame in info["frames"]]
    assert functions == ["caught", "outer", "middle", "inner"]
    assert info["frames"][-1] == {"file": __file__, "line": RAISE_LINE, "function": "inner"}
    text = info["stacktrace"]
    assert text.startswith("Traceback (most recent call last):\n")
    assert 'raise Payments.Failed("card declined")' in text  # source read when formatting
    assert text.endswith(f"{__name__}.Payments.Failed: card declined\n")
    json.dumps(info)  # plain JSON on the wire


def recurse(depth: int) -> None:
    if depth == 0:
        raise RecursionError("bottom")
    recurse(depth - 1)


def test_frames_are_capped_keeping_the_innermost() -> None:
    info = exception_info(capture_exception(caught(recurse, 300)), KEYS)
    assert len(info["frames"]) == MAX_FRAMES == 50
    assert all(frame["function"] == "recurse" for frame in info["frames"])
    bottom = recurse.__code__.co_firstlineno + 2
    assert info["frames"][-1]["line"] == bottom


def test_message_and_stacktrace_are_capped() -> None:
    long = "x" * 10_000 + " the end"
    info = exception_info(capture_exception(caught(fail_with, long)), KEYS)
    assert len(info["message"]) == MAX_MESSAGE_CHARS
    assert info["message"] == long[: MAX_MESSAGE_CHARS - len(MESSAGE_CUT)] + MESSAGE_CUT
    # The traceback keeps its tail, where the raise and the message are.
    huge = "é" * 20_000 + " the end"
    info = exception_info(capture_exception(caught(fail_with, huge)), KEYS)
    assert len(info["stacktrace"].encode()) <= MAX_STACKTRACE_BYTES
    assert info["stacktrace"].startswith(STACKTRACE_CUT)
    assert info["stacktrace"].endswith("é the end\n")
    assert "\ufffd" not in info["stacktrace"]  # no character cut in half


def fail_with(message: str) -> None:
    raise ValueError(message)


def test_secrets_in_the_message_and_traceback_are_masked() -> None:
    message = 'charge failed: token=tok_live_123 {"password": "hunter2"} amount=5'
    info = exception_info(capture_exception(caught(fail_with, message)), KEYS)
    assert info["message"] == 'charge failed: token=**** {"password": "****"} amount=5'
    assert info["stacktrace"].endswith(f"ValueError: {info['message']}\n")
    assert "tok_live_123" not in json.dumps(info) and "hunter2" not in json.dumps(info)
    # A secret right at a cap is masked before the cut, so it is never left half in clear.
    at_the_edge = "x" * (MAX_MESSAGE_CHARS - 20) + " password=hunter2hunter2hunter2"
    info = exception_info(capture_exception(caught(fail_with, at_the_edge)), KEYS)
    assert "hunter" not in info["message"]
    given = {"type": "E", "message": "token=abc", "stacktrace": "x\nE: token=abc\n"}
    assert mask_exception(given, KEYS) == {
        "type": "E",
        "message": "token=****",
        "stacktrace": "x\nE: token=****\n",
    }


def with_a_local() -> None:
    card_number = "-".join(["4111", "1111", "1111", "1111"])
    raise ValueError(f"declined ({len(card_number)} digits)")


def test_no_local_values_are_sent_and_no_frames_are_kept() -> None:
    class Held:
        pass

    held = Held()
    ref = weakref.ref(held)

    def fails(value: Held) -> None:
        raise ValueError("declined")

    error = caught(fails, held)
    captured = capture_exception(error)
    del error, held
    gc.collect()
    # The summary holds no frame: the failed call's locals are free once the app lets go.
    assert ref() is None
    info = exception_info(captured, KEYS)
    assert "Held object" not in json.dumps(info)

    info = exception_info(capture_exception(caught(with_a_local)), KEYS)
    assert "4111-1111" not in json.dumps(info)
    assert info["message"] == "declined (19 digits)"


def test_chained_exceptions_and_an_unprintable_message() -> None:
    def chained() -> None:
        try:
            fail_with("inner cause")
        except ValueError as cause:
            raise Payments.Failed("outer") from cause

    info = exception_info(capture_exception(caught(chained)), KEYS)
    assert "ValueError: inner cause" in info["stacktrace"]
    assert "The above exception was the direct cause" in info["stacktrace"]
    assert info["frames"][-1]["function"] == "chained"

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def fails() -> None:
        raise Unprintable()

    info = exception_info(capture_exception(caught(fails)), KEYS)
    assert info["message"] == "<unprintable Unprintable>"
    assert info["type"].endswith("Unprintable")

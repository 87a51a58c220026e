"""Masking of sensitive headers and body fields: one list for the collector and the server.

Standard library only, because the collector imports it inside monitored apps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

MASK = "****"

DEFAULT_MASKED_KEYS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "api_key",
    "x-auth-token",
    "token",
    "access_token",
    "accesstoken",
    "refresh_token",
    "refreshtoken",
    "id_token",
    "password",
    "confirmpassword",
    "confirm_password",
    "passwd",
    "secret",
    "client_secret",
    "creditcard",
    "credit_card",
)


def normalize_keys(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(key.strip().lower() for key in keys if key.strip())


def mask(value: Any, keys: frozenset[str], _depth: int = 0) -> Any:
    """A copy of ``value`` where every dict entry whose key is in ``keys`` (any case) is masked.

    Walks nested objects and arrays; strings, numbers and null pass through unchanged.
    """
    if _depth > 64:
        return value
    if isinstance(value, dict):
        return {
            k: (
                MASK
                if isinstance(k, str) and k.lower() in keys and v is not None
                else mask(v, keys, _depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(item, keys, _depth + 1) for item in value]
    return value


@lru_cache(maxsize=16)
def _text_pattern(keys: frozenset[str]) -> re.Pattern[str]:
    names = "|".join(sorted((re.escape(k) for k in keys), key=len, reverse=True))
    # "key": "value" / "key": 123 (JSON-like text), and key=value (form or query-like text).
    return re.compile(
        rf"""(?P<jk>"(?:{names})"\s*:\s*)(?P<jv>"(?:[^"\\]|\\.)*"?|[^\s,}}\]]+)"""
        rf"""|(?P<fk>(?<![\w-])(?:{names})=)(?P<fv>[^&\s]*)""",
        re.IGNORECASE,
    )


def mask_text(text: str, keys: frozenset[str]) -> str:
    """``text`` with the values of sensitive keys masked where it looks like JSON or a form.

    For bodies that could not be parsed (a JSON head cut by a size cap, say): best effort, so a
    secret in them does not leave the process in clear.
    """
    if not keys or not text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group("jk") is not None:
            return f'{match.group("jk")}"{MASK}"'
        return f"{match.group('fk')}{MASK}"

    return _text_pattern(keys).sub(replace, text)

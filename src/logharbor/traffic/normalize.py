"""What collectors send, turned into what we store: enums, origins, pathnames, payloads.

Pure functions (no database), shared by every ingest path so that compose, ingest-log, the
standalone request/response routes and the batch endpoint accept and store exactly the same way.
Validation problems raise ``ValueError`` with a message meant for ``fieldErrors``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import orjson

from logharbor.collector.redaction import MASK, mask, mask_text, normalize_keys
from logharbor.settings import Settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
LEVELS = ("INFO", "WARNING", "FATAL")
PROTOCOLS = ("HTTP", "HTTPS")

MAX_URL_CHARS = 2048
MAX_TRAFFIC_USER_ID_CHARS = 255
# Headers and query params are stored in full, so they get a hard limit instead of a cap.
MAX_DOCUMENT_BYTES = 128 * 1024
MAX_ELAPSED_MS = 1e12
_MAX_DEPTH = 64


# Stored JSON is compact, as collectors send it and as orjson writes it; this encoder covers what
# orjson refuses (integers beyond 64 bits) and masked JSON text.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The characters str.isspace() accepts (re's \s is the same Unicode table), controls and DEL.
_BAD_PATHNAME_CHARACTER = re.compile(r"[\s\x00-\x1f\x7f]")


def level_for(status: int) -> str:
    if 400 <= status < 500:
        return "WARNING"
    if status >= 500:
        return "FATAL"
    return "INFO"


def _enum(value: str, allowed: tuple[str, ...], what: str) -> str:
    upper = value.strip().upper()
    if upper not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)} (any case)")
    return upper


def parse_method(value: str) -> str:
    return _enum(value, METHODS, "Method")


def parse_level(value: str) -> str:
    return _enum(value, LEVELS, "Level")


def parse_protocol(value: str) -> str:
    return _enum(value, PROTOCOLS, "Protocol")


def check_text(value: str, *, allow_nul: bool = False) -> str:
    """Text we can store on both databases: no unpaired surrogates (invalid UTF-8), no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Must be valid UTF-8 text (no unpaired surrogates)") from None
    if not allow_nul and "\x00" in value:
        raise ValueError("Must not contain NUL characters")
    return value


def check_json(value: Any, *, allow_nul: bool = False, _depth: int = 0) -> Any:
    """Reject what JSON columns cannot hold the same way on SQLite and PostgreSQL."""
    if _depth > _MAX_DEPTH:
        raise ValueError(f"Must not be nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, str):
        check_text(value, allow_nul=allow_nul)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Must not contain NaN or Infinity")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, allow_nul=allow_nul)
            check_json(item, allow_nul=allow_nul, _depth=_depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, allow_nul=allow_nul, _depth=_depth + 1)
    return value


@lru_cache(maxsize=4096)  # collectors send the same few domains over and over
def normalize_domain(value: str, protocol: str | None = None) -> tuple[str, str]:
    """``(origin, PROTOCOL)``: ``scheme://host[:port]``, lower-case host, default port dropped.

    A value without a scheme (``api.example.com``, as the Arkyn docs write it) takes ``protocol``
    (HTTPS when absent). Any path, query or fragment is dropped: a domain is an origin.
    """
    text = check_text(value).strip()
    if not text:
        raise ValueError("Value is required")
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"Must be at most {MAX_URL_CHARS} characters")
    # urlsplit silently deletes tabs and newlines (WHATWG), which would store another domain
    # than the one sent: "https://a\nb.com" became "https://ab.com".
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError("Invalid URL format")
    if "://" not in text:
        text = f"{(protocol or 'HTTPS').lower()}://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError("Invalid URL format") from None
    # WebSocket exchanges are served over the same origin as HTTP(S).
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https"):
        raise ValueError("Must be an http:// or https:// URL")
    host = (parts.hostname or "").lower()
    if not host or any(ch.isspace() for ch in host) or "@" in parts.netloc:
        raise ValueError("Invalid URL format")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    origin = f"{scheme}://{host}"
    if port is not None and port != (443 if scheme == "https" else 80):
        origin += f":{port}"
    return origin, scheme.upper()


def normalize_pathname(value: str) -> str:
    """A pathname as sent (query and fragment included, as the original kept them), validated."""
    text = check_text(value)
    if not text:
        raise ValueError("Value is required")
    if not text.startswith("/"):
        raise ValueError("Pathname must start with /")
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"Must be at most {MAX_URL_CHARS} characters")
    if _BAD_PATHNAME_CHARACTER.search(text):
        raise ValueError("Invalid pathname format")
    return text


def normalize_route(value: str) -> str | None:
    """A route template as the framework wrote it (``/orders/{id}``, ``/items/<int:pk>``), or None
    when blank. Django's have no leading slash; they get one, so all read as pathnames."""
    text = value.strip()
    if not text:
        return None
    return normalize_pathname(text if text.startswith("/") else "/" + text)


_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,})$"
)


def template_pathname(pathname: str) -> str:
    """``/users/42?x=1`` → ``/users/:id``: the query goes, and every segment that is a number, a
    UUID or a long hex/base64-ish token becomes ``:id`` (alert fingerprints, opt-in stats)."""
    path = pathname.split("?", 1)[0].split("#", 1)[0] or "/"
    segments = [":id" if _ID_SEGMENT.match(part) else part for part in path.split("/")]
    return "/".join(segments)


def parse_document_text(value: Any) -> Any:
    """Collectors send headers and query params either as JSON or as JSON text of it."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


# --- payloads ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """The settings every ingest path needs; build once per request with ``from_settings``."""

    masked_keys: frozenset[str]
    body_cap_bytes: int
    body_preview_chars: int
    # A record sent without a routeTemplate gets template_pathname(pathname) as its route.
    template_pathnames: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestConfig:
        return _config(
            tuple(settings.masked_keys),
            settings.body_cap_bytes,
            settings.body_preview_chars,
            settings.stats_template_pathnames,
        )


@lru_cache(maxsize=16)
def _config(
    masked_keys: tuple[str, ...], body_cap_bytes: int, preview_chars: int, template: bool
) -> IngestConfig:
    # Every ingest request asks for it; building the key set each time showed in profiles.
    return IngestConfig(normalize_keys(masked_keys), body_cap_bytes, preview_chars, template)


@dataclass(frozen=True, slots=True)
class StoredBody:
    text: str | None  # JSON text of the stored value (column ``body``)
    preview: str | None
    size: int  # bytes of the body as received (UTF-8), before truncation
    truncated: bool


def _mask(value: Any, keys: frozenset[str]) -> Any:
    # Headers also travel as [name, value] pairs (repeated headers keep their order that way).
    if isinstance(value, list) and all(
        isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) for item in value
    ):
        return [
            [name, MASK if name.lower() in keys and item is not None else mask(item, keys)]
            for name, item in value
        ]
    return mask(value, keys)


def mask_document(value: Any, keys: frozenset[str]) -> Any:
    """Mask sensitive keys, keeping the form: an object stays an object, JSON text stays text."""
    if isinstance(value, (dict, list)):
        return _mask(value, keys)
    if isinstance(value, str):
        parsed = parse_document_text(value)
        if isinstance(parsed, (dict, list)):
            masked = _mask(parsed, keys)
            if masked != parsed:
                return _dumps(masked)
            return value
        # Form bodies, JSON cut short by a collector's cap...: mask by pattern, best effort.
        return mask_text(value, keys)
    return value


def _orjson(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


def _surely_clean(data: bytes, *, allow_nul: bool) -> bool:
    """Whether orjson's output proves that ``check_json`` accepts the value it encodes.

    orjson refuses unpaired surrogates, non-string keys and huge integers, writes NaN and
    Infinity as ``null`` and NUL as ``\\u0000``. So output without ``null``, without ``\\u0000``
    (where NUL is refused) and with at most ``_MAX_DEPTH`` brackets cannot hold any of what
    ``check_json`` rejects; anything else (a JSON null, say) takes the exact walk.
    """
    if b"null" in data or (not allow_nul and b"\\u0000" in data):
        return False
    return data.count(b"{") + data.count(b"[") <= _MAX_DEPTH


def _compact_json(value: Any) -> bytes:
    """UTF-8 compact JSON of a value ``check_json`` accepted."""
    data = _orjson(value)
    return data if data is not None else _dumps(value).encode("utf-8")


def checked_json(value: Any, *, allow_nul: bool = False) -> bytes:
    """``check_json``'s verdict (ValueError) and, when it passes, the value's compact JSON.

    The exact walk runs only when orjson's output does not already clear the value."""
    data = _orjson(value)
    if data is None or not _surely_clean(data, allow_nul=allow_nul):
        check_json(value, allow_nul=allow_nul)
        if data is None:
            data = _dumps(value).encode("utf-8")
    return data


@lru_cache(maxsize=16)
def _plain_keys(keys: frozenset[str]) -> re.Pattern[bytes] | None:
    """A search for the masked keys in ASCII JSON, or None when a key could be escaped there."""
    if not keys or not all(
        key.isascii() and key.isprintable() and not set(key) & {'"', "\\"} for key in keys
    ):
        return None
    return re.compile(b"|".join(re.escape(key.encode()) for key in sorted(keys)))


def _mentions_none(data: bytes, keys: frozenset[str]) -> bool:
    """True when masking cannot change the value ``data`` encodes: no masked key occurs in it.

    ASCII only: there str.lower() is ASCII lowering (a Kelvin sign lowers to "k", for one), and a
    key without quotes, backslashes or control characters is written out verbatim.
    """
    if not keys:
        return True
    search = _plain_keys(keys)
    if search is None or not data.isascii():
        return False
    return search.search(data.lower()) is None


def _holds_masked_key(value: Any, keys: frozenset[str], depth: int = 0) -> bool:
    """Whether ``mask_document`` would mask anything in this object or array: the same walk as
    ``redaction.mask`` (and ``_mask``'s [name, value] header pairs), without building a copy."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        for key, item in value.items():
            if item is not None and isinstance(key, str) and key.lower() in keys:
                return True
            if isinstance(item, (dict, list)) and _holds_masked_key(item, keys, depth + 1):
                return True
        return False
    if isinstance(value, list):
        if depth == 0 and all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) for item in value
        ):
            return any(
                (pair[1] is not None and pair[0].lower() in keys)
                or (isinstance(pair[1], (dict, list)) and _holds_masked_key(pair[1], keys, 1))
                for pair in value
            )
        return any(
            isinstance(item, (dict, list)) and _holds_masked_key(item, keys, depth + 1)
            for item in value
        )
    return False


def _masked(value: Any, data: bytes, keys: frozenset[str]) -> Any:
    if isinstance(value, (dict, list)):
        # Walking the keys is cheaper than searching the JSON text for every masked key.
        return mask_document(value, keys) if _holds_masked_key(value, keys) else value
    if _mentions_none(data, keys):
        return value  # what mask_document would return: an equal copy, or value itself
    return mask_document(value, keys)


def prepare_document(value: Any, config: IngestConfig) -> Any:
    """Headers or query params: checked, size-limited, masked. Raises ValueError."""
    data = checked_json(value)
    masked = _masked(value, data, config.masked_keys)
    if masked is not value:
        data = _compact_json(masked)  # masking only puts "****" strings in: still clean
    # The limit counts the JSON the column stores: compact, as orjson writes it.
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"Must be at most {MAX_DOCUMENT_BYTES} bytes of JSON")
    return masked


def _head_bytes(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", errors="ignore")


def prepare_body(value: Any, config: IngestConfig) -> StoredBody:
    """A body of any JSON type, masked and capped. Over the cap we keep its head as a string.

    A text body is measured, previewed and capped as the text; any other as its compact JSON."""
    if value is None:
        return StoredBody(None, None, 0, False)
    data = checked_json(value, allow_nul=True)
    masked = _masked(value, data, config.masked_keys)
    if isinstance(masked, str):
        raw_bytes = masked.encode("utf-8")
        # The stored text is the JSON string literal: orjson's of the value, unless masked.
        literal = data if masked is value else None
    else:
        raw_bytes = data if masked is value else _compact_json(masked)
        literal = raw_bytes
    size = len(raw_bytes)
    truncated = size > config.body_cap_bytes
    if truncated:
        head = _head_bytes(raw_bytes, config.body_cap_bytes)
        text, raw = _dumps(head), head
    else:
        raw = masked if isinstance(masked, str) else raw_bytes.decode("utf-8")
        text = literal.decode("utf-8") if literal is not None else _dumps(masked)
    # PostgreSQL text cannot hold NUL; the JSON text escapes it, the preview must drop it.
    preview = raw[: config.body_preview_chars].replace("\x00", "") or None
    return StoredBody(text, preview, size, truncated)


def load_body(text: str | None) -> Any:
    return None if text is None else json.loads(text)

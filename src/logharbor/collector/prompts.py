"""Library prompts for apps: ``collector.prompt("Summarize a ticket", label="production")``.

A prompt is fetched once from LogHarbor (``GET /prompts/resolve``) and then served from memory;
a background thread re-fetches every prompt the app has asked for each ``refresh_interval``
seconds. So after its first fetch a prompt never waits for the network, a label moved on the
server reaches the app within one interval, and while LogHarbor is down the app keeps the last
version it got. Only the very first fetch of a prompt blocks (at most ``timeout`` seconds), and
it raises ``PromptUnavailable`` when it fails, since there is nothing to serve yet.

``Prompt.compile(**variables)`` fills ``{name}`` placeholders (``{{`` and ``}}`` are literal
braces) and returns a ``CompiledPrompt``: a ``str`` that remembers its prompt and version. The
LLM instrumentation finds it among a call's messages (``llm.find_prompt``) and attributes the
call to that version, with no further code in the app.
"""

from __future__ import annotations

import logging
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from logharbor.collector.transport import open_client

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("logharbor.collector")

RESOLVE_PATH = "/prompts/resolve"
_FORMATTER = string.Formatter()


class PromptError(Exception):
    """Something about a library prompt the app asked for is wrong."""


class PromptUnavailable(PromptError):
    """The first fetch of a prompt failed (LogHarbor unreachable, or no such prompt/label)."""


class PromptVariableMissing(PromptError, KeyError):
    """``compile()`` was not given a variable the prompt's text uses."""

    def __init__(self, name: str, prompt: Prompt) -> None:
        super().__init__(name)
        self.name = name
        self.message = (
            f"prompt {prompt.title!r} (version {prompt.version}) uses {{{name}}}, "
            f"which compile() was not given"
        )

    def __str__(self) -> str:  # KeyError's own str() would only quote the name
        return self.message


class CompiledPrompt(str):
    """Prompt text that remembers the library prompt and version it was compiled from."""

    logharbor_prompt: tuple[str, int]
    # Whether this process ever compiled one: until then no LLM call can carry one, and the
    # sender does not search the calls' messages for it.
    made: ClassVar[bool] = False

    def __new__(cls, text: str, origin: tuple[str, int]) -> CompiledPrompt:
        compiled = super().__new__(cls, text)
        compiled.logharbor_prompt = origin
        CompiledPrompt.made = True
        return compiled


@dataclass(frozen=True)
class Prompt:
    """One version of a library prompt, as ``GET /prompts/resolve`` answered it."""

    id: str
    version: int
    title: str
    content: str
    model: str
    tags: tuple[str, ...]
    labels: tuple[str, ...]
    etag: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Prompt:
        return cls(
            id=str(body["_id"]),
            version=int(body["version"]),
            title=str(body["title"]),
            content=str(body["content"]),
            model=str(body["model"]),
            tags=tuple(str(tag) for tag in body.get("tags") or ()),
            labels=tuple(str(label) for label in body.get("labels") or ()),
            etag=str(body.get("etag") or f"{body['_id']}:{body['version']}"),
        )

    def compile(self, **variables: Any) -> CompiledPrompt:
        """The text with each ``{name}`` replaced by ``variables[name]`` (format specs and
        ``!r``/``!s`` work as in ``str.format``); ``{{``/``}}`` stand for literal braces."""
        try:
            parts = list(_FORMATTER.parse(self.content))
        except ValueError as exc:
            raise PromptError(
                f"prompt {self.title!r} (version {self.version}) is not a valid template: {exc}; "
                "write literal braces as {{ and }}"
            ) from None
        out: list[str] = []
        for literal, name, spec, conversion in parts:
            out.append(literal)
            if name is None:
                continue
            if not name.isidentifier():
                raise PromptError(
                    f"prompt {self.title!r} (version {self.version}) has the placeholder "
                    f"{{{name}}}; placeholders are names, literal braces are {{{{ and }}}}"
                )
            if name not in variables:
                raise PromptVariableMissing(name, self)
            value = variables[name]
            if conversion:
                value = _FORMATTER.convert_field(value, conversion)
            out.append(format(value, spec or ""))
        return CompiledPrompt("".join(out), (self.id, self.version))


Key = tuple[str, str, str | None]  # ("id" | "title", its value, label)
# Fetch one prompt; given the version already held, the server may answer "unchanged".
Fetch = Callable[[Key, "Prompt | None"], Prompt]


class PromptCache:
    """The app's prompts in memory, refreshed by one daemon thread."""

    def __init__(self, fetch: Fetch, refresh_interval: float = 60.0) -> None:
        if refresh_interval <= 0:
            raise ValueError("refresh_interval must be positive")
        self._fetch = fetch
        self.refresh_interval = refresh_interval
        self._prompts: dict[Key, Prompt] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._passes = threading.Condition()
        self.refreshes = 0  # completed refresh passes
        self.refresh_failures = 0  # fetches of a known prompt that failed (last one kept)

    def held(self, key: Key) -> Prompt | None:
        """The prompt if it is in memory (never fetches)."""
        with self._lock:
            return self._prompts.get(key)

    def get(self, key: Key) -> Prompt:
        known = self.held(key)
        if known is not None:
            return known
        prompt = self._fetch(key, None)  # raises PromptUnavailable: nothing to serve yet
        with self._lock:
            self._prompts.setdefault(key, prompt)
            prompt = self._prompts[key]
        self._start()
        return prompt

    def wait_for_refresh(self, passes: int, timeout: float | None = None) -> bool:
        """Wait until ``passes`` refresh passes have completed in all; True if they have."""
        with self._passes:
            return self._passes.wait_for(lambda: self.refreshes >= passes, timeout)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def after_fork(self) -> None:
        """In a forked child: the thread did not survive; start one on the next new prompt."""
        self._lock = threading.Lock()
        self._passes = threading.Condition()
        self._thread = None
        if self._prompts and not self._stop.is_set():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="logharbor-prompts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            try:
                self._refresh_all()
            except Exception:  # never let the thread die: the app keeps its last prompts
                log.debug("LogHarbor prompt refresh error (ignored)", exc_info=True)
            with self._passes:
                self.refreshes += 1
                self._passes.notify_all()

    def _refresh_all(self) -> None:
        with self._lock:
            keys = list(self._prompts)
        for key in keys:
            if self._stop.is_set():
                return
            with self._lock:
                held = self._prompts.get(key)
            try:
                fresh = self._fetch(key, held)
            except Exception as exc:
                self.refresh_failures += 1
                log.warning("LogHarbor prompt %r not refreshed, keeping the last one: %s", key, exc)
                continue
            with self._lock:
                previous = self._prompts.get(key)
                self._prompts[key] = fresh
            if previous is not None and previous.etag != fresh.etag:
                log.info("LogHarbor prompt %r is now version %d", key[1], fresh.version)


class PromptFetcher:
    """``GET /prompts/resolve`` on one LogHarbor server, with an ingest key or a user token."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 5.0) -> None:
        self.base_url = url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = open_client(self._api_key, self._timeout)
            return self._client

    def __call__(self, key: Key, held: Prompt | None) -> Prompt:
        kind, value, label = key
        params = {kind: value, **({"label": label} if label is not None else {})}
        headers = {"If-None-Match": f'"{held.etag}"'} if held is not None else {}
        import httpx

        try:
            response = self._http().get(
                f"{self.base_url}{RESOLVE_PATH}", params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise PromptUnavailable(
                f"LogHarbor at {self.base_url} could not be reached for prompt {value!r}: {exc}"
            ) from None
        if response.status_code == 304 and held is not None:
            return held
        if response.status_code != 200:
            raise PromptUnavailable(
                f"LogHarbor answered {response.status_code} for prompt {value!r}"
                f"{f' label {label!r}' if label else ''}: {_reason(response)}"
            )
        try:
            return Prompt.from_json(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise PromptUnavailable(f"LogHarbor's answer for prompt {value!r}: {exc}") from None

    def reset_after_fork(self) -> None:
        self._client = None
        self._client_lock = threading.Lock()

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:200]
    return str(body)[:200]

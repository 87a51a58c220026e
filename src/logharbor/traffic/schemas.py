"""Request and response bodies of the traffic-log API (Arkyn Logs field names).

Input models ignore unknown keys (as the original did) and are strict about types: a status sent
as ``"200"`` is a 400 naming ``status``, not a silent conversion. Enums accept any case and come
out upper case. Payload fields (headers, bodies, query params) take any JSON value, or JSON text
of one; ``ingest.prepare_payload`` checks them for what neither database can store, masks and
caps them (that needs the settings).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from logharbor.common.ids import is_uuid
from logharbor.common.timestamps import Timestamp
from logharbor.ingest import normalize as ingest_normalize
from logharbor.traffic import normalize


def _uuid(value: str) -> str:
    if not is_uuid(value):
        raise ValueError("Invalid id format")
    return value.lower()


def _text(value: str) -> str:
    return normalize.check_text(value)


def _name(value: str) -> str:
    value = normalize.check_text(value).strip()
    if not value:
        raise ValueError("Name is required")
    return value


def _traffic_user_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("Must be a string or null")
    text = normalize.check_text(str(value))
    if len(text) > normalize.MAX_TRAFFIC_USER_ID_CHARS:
        raise ValueError(f"Must be at most {normalize.MAX_TRAFFIC_USER_ID_CHARS} characters")
    return text or None


def _enum_schema(values: tuple[str, ...]) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "enum": list(values), "description": "Any case is accepted."}
    )


Id = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_uuid),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]
Method = Annotated[
    str, Field(strict=True), AfterValidator(normalize.parse_method), _enum_schema(normalize.METHODS)
]
Protocol = Annotated[
    str,
    Field(strict=True),
    AfterValidator(normalize.parse_protocol),
    _enum_schema(normalize.PROTOCOLS),
]
Status = Annotated[
    int, Field(strict=True, ge=100, le=599, description="HTTP status code", examples=[200])
]
ElapsedTime = Annotated[
    float,
    Field(
        strict=True,
        ge=0,
        le=normalize.MAX_ELAPSED_MS,
        allow_inf_nan=False,
        description="Milliseconds; fractions are kept",
        examples=[123.456],
    ),
]
TrafficUserId = Annotated[
    Any,
    AfterValidator(_traffic_user_id),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "The monitored app's own user id, any string",
        }
    ),
]
Name = Annotated[str, Field(strict=True, max_length=200), AfterValidator(_name)]
UrlText = Annotated[
    str, Field(strict=True, max_length=normalize.MAX_URL_CHARS), AfterValidator(_text)
]
# Payloads are checked where they are masked and capped (``ingest.prepare_payload``, which names
# the field): checking them here as well cost every ingested record a second pass.
Document = Annotated[
    Any,
    WithJsonSchema({"description": "A JSON object (or any JSON value), or JSON text of one"}),
]
Body = Annotated[
    Any,
    WithJsonSchema({"description": "Any JSON value, or text; stored in full up to the body cap"}),
]
RetentionDays = Annotated[
    int | None,
    Field(strict=True, ge=1, le=36500, description="Delete records older than this many days"),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- traffic sources, shares, ingest keys ----------------------------------------------------


class TrafficSourceIn(_In):
    name: Name
    trafficDomain: UrlText = Field(examples=["https://api.payments.com"])
    retentionDays: RetentionDays = None
    captureLlmContent: bool = Field(
        default=True, description="false: LLM calls are stored without their content"
    )


class TrafficSourceUpdate(_In):
    name: Name | None = None
    trafficDomain: UrlText | None = None
    retentionDays: RetentionDays = Field(default=None, description="null clears the retention")
    captureLlmContent: bool | None = Field(
        default=None,
        description="false: LLM calls are stored without their content (messages, output "
        "preview); null or absent keeps the setting",
    )


class TrafficSourceOut(BaseModel):
    id: str
    name: str
    trafficDomain: str
    userId: str
    retentionDays: int | None
    captureLlmContent: bool = Field(description="Whether LLM calls keep their messages")
    access: Literal["owner", "shared"] = Field(
        description="owner: yours; shared: shared with you read-only"
    )
    createdAt: Timestamp
    updatedAt: Timestamp


class ShareIn(_In):
    email: Annotated[str, Field(strict=True, min_length=3, max_length=320), AfterValidator(_text)]


class ShareOut(BaseModel):
    id: str
    trafficSourceId: str
    userId: str
    email: str
    name: str
    permission: Literal["READ_ONLY"]
    createdAt: Timestamp


class IngestKeyIn(_In):
    name: Name


class IngestKeyOut(BaseModel):
    id: str
    trafficSourceId: str
    name: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart")
    createdAt: Timestamp
    lastUsedAt: Timestamp | None
    revokedAt: Timestamp | None


class IngestKeyCreated(IngestKeyOut):
    key: str = Field(description="The secret; shown only in this response")


# --- domains, pathnames, core pathnames ------------------------------------------------------


class DomainIn(_In):
    value: UrlText = Field(examples=["https://api.example.com"])
    protocol: Protocol | None = Field(
        default=None, description="Used when value has no scheme; otherwise the scheme decides"
    )


class DomainOut(BaseModel):
    id: str
    value: str
    protocol: str
    trafficSourceId: str
    createdAt: Timestamp


class PathnameIn(_In):
    value: UrlText = Field(examples=["/v1/users"])


class PathnameOut(BaseModel):
    id: str
    value: str
    domainId: str
    trafficSourceId: str
    createdAt: Timestamp


class CorePathnameIn(_In):
    value: UrlText = Field(examples=["/users/:id"])


class CorePathnameOut(BaseModel):
    id: str
    value: str
    trafficSourceId: str
    createdAt: Timestamp


# --- requests and responses ------------------------------------------------------------------


class RequestIn(_In):
    headers: Document
    body: Body = None
    queryParams: Document = None


class ResponseIn(_In):
    headers: Document
    body: Body = None


class ResponseOut(BaseModel):
    id: str
    headers: Any
    body: Any = Field(description="The body as sent (head only when bodyTruncated)")
    bodyPreview: str | None
    bodySize: int = Field(description="Size of the body as received, in bytes")
    bodyTruncated: bool
    trafficSourceId: str | None
    createdAt: Timestamp


class RequestOut(ResponseOut):
    queryParams: Any


class PayloadSummary(BaseModel):
    """A request or response inside a list: everything but the full body."""

    id: str
    headers: Any
    bodyPreview: str | None
    bodySize: int
    bodyTruncated: bool
    createdAt: Timestamp


class RequestSummary(PayloadSummary):
    queryParams: Any


# --- traffic ---------------------------------------------------------------------------------


class HttpTrafficIn(_In):
    status: Status
    method: Method
    elapsedTime: ElapsedTime
    trafficUserId: TrafficUserId = None
    domainId: Id
    pathnameId: Id
    requestId: Id
    responseId: Id


class HttpTrafficOut(BaseModel):
    id: str
    status: int
    method: str
    level: str
    elapsedTime: float
    trafficUserId: str | None
    trafficSourceId: str
    domainId: str
    pathnameId: str
    requestId: str | None
    responseId: str | None
    createdAt: Timestamp


def _hex_id(check: Any, digits: int) -> Any:
    return Annotated[
        str,
        Field(strict=True),
        AfterValidator(check),
        WithJsonSchema({"type": "string", "pattern": f"^[0-9a-fA-F]{{{digits}}}$"}),
    ]


# Checked by the ingest normalize step's own functions: one rule for every wire format.
TraceId = _hex_id(ingest_normalize.trace_id, 32)
SpanId = _hex_id(ingest_normalize.span_id, 16)


class FrameIn(_In):
    file: Annotated[str, Field(strict=True, max_length=4096)]
    line: Annotated[int | None, Field(strict=True, ge=0)] = None
    function: Annotated[str, Field(strict=True, max_length=4096)]


class ExceptionIn(_In):
    """An exception raised while serving the request; stored masked and capped."""

    type: Annotated[str, Field(strict=True, min_length=1, max_length=4096)]
    message: Annotated[str, Field(strict=True)] = ""
    stacktrace: Annotated[str | None, Field(strict=True)] = None
    frames: Annotated[list[FrameIn], Field(max_length=1000)] = []


class ComposeIn(_In):
    """One HTTP exchange, as the Arkyn collectors send it (every known client version)."""

    domainUrl: UrlText = Field(examples=["https://api.example.com"])
    pathnameUrl: UrlText = Field(examples=["/v1/users"])
    status: Status
    protocol: Protocol | None = Field(
        default=None, description="Optional; the scheme of domainUrl decides"
    )
    method: Method
    trafficUserId: TrafficUserId = None
    elapsedTime: ElapsedTime
    requestHeaders: Document
    requestBody: Body = None
    queryParams: Document = None
    responseHeaders: Document
    responseBody: Body = None
    routeTemplate: UrlText | None = Field(
        default=None,
        description=(
            "The route the app matched (/orders/{id}); statistics count the record under it "
            "instead of its concrete pathname, which the record keeps"
        ),
        examples=["/orders/{order_id}"],
    )
    id: Id | None = Field(
        default=None,
        description=(
            "Optional client-generated UUID. A record sent again with the same id (a collector's "
            "retry) is stored once; the answer is the record already stored."
        ),
    )
    traceId: TraceId | None = Field(  # type: ignore[valid-type]
        default=None, description="The W3C trace the request belongs to (32 hex digits)"
    )
    spanId: SpanId | None = Field(  # type: ignore[valid-type]
        default=None, description="The request's own span in that trace (16 hex digits)"
    )
    exception: ExceptionIn | None = Field(
        default=None, description="The exception raised while serving it, if any"
    )


class IngestLogIn(ComposeIn):
    trafficSourceId: Id | None = Field(
        default=None, description="Required with a user token; an ingest key implies its source"
    )


class RecordOut(BaseModel):
    """An HTTP traffic record joined with its domain, pathname, request and response."""

    id: str
    status: int
    method: str
    protocol: str
    level: str
    elapsedTime: float
    trafficUserId: str | None
    trafficSourceId: str
    domainId: str
    domain: str
    pathnameId: str
    pathname: str
    routeTemplate: str | None = Field(
        default=None, description="The route template sent with the record, if any"
    )
    request: RequestSummary | None
    response: PayloadSummary | None
    traceId: str | None = Field(default=None, description="The W3C trace id, if known")
    spanId: str | None = Field(default=None, description="The request's span id, if known")
    createdAt: Timestamp


class FrameOut(BaseModel):
    file: str
    line: int | None
    function: str


class ExceptionOut(BaseModel):
    type: str
    message: str
    stacktrace: str | None
    frames: list[FrameOut]


class RecordDetailOut(RecordOut):
    request: RequestOut | None  # type: ignore[assignment]
    response: ResponseOut | None  # type: ignore[assignment]
    exception: ExceptionOut | None = None


class CoreLogIn(_In):
    status: Status
    method: Method
    elapsedTime: ElapsedTime
    trafficUserId: TrafficUserId = None
    corePathnameId: Id
    requestId: Id | None = None
    responseId: Id | None = None


class CoreLogOut(BaseModel):
    """A call of a route template, or an application log line (status, method and elapsedTime
    null; message set)."""

    id: str
    status: int | None
    method: str | None
    level: str
    elapsedTime: float | None
    trafficUserId: str | None
    trafficSourceId: str
    corePathnameId: str
    requestId: str | None
    responseId: str | None
    message: str | None = None
    traceId: str | None = None
    spanId: str | None = None
    createdAt: Timestamp

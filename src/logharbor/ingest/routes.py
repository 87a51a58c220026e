"""Where the ingest endpoints are served: one table, read by the lane and by FastAPI's docs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic.json_schema import models_json_schema
from starlette.routing import Route

from logharbor.auth.deps import bearer_scheme
from logharbor.common.routing import ArkynRoute
from logharbor.ingest import compose, otlp_routes
from logharbor.ingest.lane import Endpoint, arkyn_errors
from logharbor.traffic.schemas import ComposeIn, IngestLogIn, RecordDetailOut

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {} for status in (400, 401, 403, 404, 409, 413, 415, 503)
}


@dataclass(frozen=True)
class IngestRoute:
    path: str
    endpoint: Endpoint
    # The original Arkyn server's plural paths: served, and left out of the docs.
    aliases: tuple[str, ...] = ()
    docs: dict[str, Any] = field(default_factory=dict)


def _body(schema: dict[str, Any], *content_types: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {content_type: {"schema": schema} for content_type in content_types},
        }
    }


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
        "description": description,
    }


_COMPOSE = {"$ref": "#/components/schemas/ComposeIn"}
_SOURCE = _path_parameter("trafficSourceId", "The traffic source's id")

ROUTES: tuple[IngestRoute, ...] = (
    IngestRoute(
        "/http-traffic-record/{trafficSourceId}",
        arkyn_errors(compose.compose_record),
        aliases=("/http-traffic-records/{trafficSourceId}",),
        docs={
            "status_code": 201,
            "response_model": RecordDetailOut,
            "tags": ["http traffic records"],
            "openapi_extra": {**_body(_COMPOSE, "application/json"), "parameters": [_SOURCE]},
        },
    ),
    IngestRoute(
        "/ingest-log",
        arkyn_errors(compose.ingest_log),
        docs={
            "status_code": 201,
            "response_model": RecordDetailOut,
            "tags": ["http traffic records"],
            "openapi_extra": _body(
                {"$ref": "#/components/schemas/IngestLogIn"}, "application/json"
            ),
        },
    ),
    IngestRoute(
        "/http-traffic-record/{trafficSourceId}/batch",
        arkyn_errors(compose.batch),
        aliases=("/http-traffic-records/{trafficSourceId}/batch",),
        docs={
            "status_code": 201,
            "tags": ["batch ingest"],
            "summary": "Store up to 1,000 traffic records; per-item errors",
            "openapi_extra": {
                **_body(
                    {
                        "oneOf": [
                            {"type": "array", "items": _COMPOSE},
                            {
                                "type": "object",
                                "properties": {
                                    "records": {
                                        "type": "array",
                                        "items": _COMPOSE,
                                        "maxItems": compose.MAX_BATCH_RECORDS,
                                    }
                                },
                            },
                        ]
                    },
                    "application/json",
                ),
                "parameters": [_SOURCE],
            },
        },
    ),
    IngestRoute(
        "/api/v1/ingest",
        arkyn_errors(compose.ingest_batch),
        docs={
            "status_code": 201,
            "tags": ["batch ingest"],
            "summary": "Family-neutral batch ingest: {trafficSourceId, records}",
            "openapi_extra": _body(
                {
                    "type": "object",
                    "properties": {
                        "trafficSourceId": {"type": "string", "format": "uuid"},
                        "records": {
                            "type": "array",
                            "items": _COMPOSE,
                            "maxItems": compose.MAX_BATCH_RECORDS,
                        },
                    },
                    "required": ["records"],
                },
                "application/json",
            ),
        },
    ),
)


_OTLP_BODY = {
    "description": (
        "An OTLP ExportTraceServiceRequest or ExportLogsServiceRequest: protobuf or the spec's "
        "JSON, optionally with Content-Encoding: gzip"
    ),
    "schema": {"type": "string", "format": "binary"},
}


def _otlp_docs(summary: str) -> dict[str, Any]:
    return {
        "status_code": 200,
        "tags": ["opentelemetry"],
        "summary": summary,
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-protobuf": _OTLP_BODY,
                    "application/json": _OTLP_BODY,
                },
            },
            "parameters": [
                {
                    "name": "X-Traffic-Source-Id",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "format": "uuid"},
                    "description": "With a user token: the traffic source to write to",
                }
            ],
        },
    }


ROUTES = (
    *ROUTES,
    IngestRoute(
        "/v1/traces",
        otlp_routes.export_traces,
        docs=_otlp_docs("OTLP/HTTP traces in: HTTP spans become traffic records"),
    ),
    IngestRoute(
        "/v1/logs",
        otlp_routes.export_logs,
        docs=_otlp_docs("OTLP/HTTP logs in: log records become core logs"),
    ),
)


def lane_routes() -> list[Route]:
    """The Starlette routes the ingest lane serves: every path and alias, POST only."""
    return [
        Route(path, route.endpoint, methods=["POST"])
        for route in ROUTES
        for path in (route.path, *route.aliases)
    ]


def docs_router() -> APIRouter:
    """The same endpoints declared to FastAPI, for the OpenAPI docs (and served by it too,
    should a request ever reach it)."""
    router = APIRouter(route_class=ArkynRoute)
    for route in ROUTES:
        for path in (route.path, *route.aliases):
            router.add_api_route(
                path,
                route.endpoint,
                methods=["POST"],
                include_in_schema=path == route.path,
                dependencies=[Depends(bearer_scheme)],
                responses=_WRITE_ERRORS,
                **route.docs,
            )
    return router


def document_bodies(app: FastAPI) -> None:
    """Add the request bodies the ingest routes refer to (``#/components/schemas/ComposeIn``)
    to the app's OpenAPI document: their endpoints read the body themselves, so FastAPI does
    not see the models."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, found = models_json_schema(
                [(ComposeIn, "validation"), (IngestLogIn, "validation")],
                ref_template="#/components/schemas/{model}",
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(found["$defs"])
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]

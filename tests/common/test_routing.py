"""Family routes authenticate before they read the body, with the authentication their app was
given where it was created: nothing is registered by importing a module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from logharbor.common import handlers, routing
from logharbor.common.errors import MissingToken
from logharbor.common.routing import ArkynRoute, Authentication, install_authentication


class Thing(BaseModel):
    name: str


async def caller(request: Request) -> str:
    return str(request.state.caller)


def resolve_caller(request: Request) -> None:
    token = request.headers.get("authorization")
    if token is None:
        raise MissingToken()
    request.state.caller = token


def _app(authentication: Authentication | None) -> FastAPI:
    router = APIRouter(route_class=ArkynRoute)

    @router.post("/things")
    async def create(body: Thing, who: Annotated[str, Depends(caller)]) -> dict[str, str]:
        return {"name": body.name, "by": who}

    @router.post("/open")
    async def open_route(body: Thing) -> dict[str, str]:
        return {"name": body.name}

    app = FastAPI()
    handlers.install(app)
    if authentication is not None:
        install_authentication(app, authentication)
    app.include_router(router)
    return app


def test_an_installed_authentication_runs_before_the_body_is_read() -> None:
    client = TestClient(_app(Authentication(dependency=caller, resolve=resolve_caller)))
    json_type = {"content-type": "application/json"}

    no_token = client.post("/things", content=b"{not json", headers=json_type)
    assert no_token.status_code == 400
    assert no_token.json()["message"] == "No token provided", no_token.text

    with_token = client.post(
        "/things", content=b"{not json", headers={**json_type, "authorization": "t"}
    )
    assert with_token.status_code == 400
    assert with_token.json()["message"] == "Malformed JSON body"

    ok = client.post("/things", json={"name": "a"}, headers={"authorization": "t"})
    assert ok.status_code == 200 and ok.json() == {"name": "a", "by": "t"}
    # A route without the dependency is not authenticated.
    assert client.post("/open", json={"name": "b"}).status_code == 200


def test_each_app_has_its_own_authentication() -> None:
    def refuse_everyone(request: Request) -> None:
        raise MissingToken("nobody")

    strict = TestClient(_app(Authentication(dependency=caller, resolve=refuse_everyone)))
    lenient = TestClient(_app(Authentication(dependency=caller, resolve=resolve_caller)))
    headers = {"authorization": "t"}
    assert strict.post("/things", json={"name": "a"}, headers=headers).status_code == 400
    assert lenient.post("/things", json={"name": "a"}, headers=headers).status_code == 200


def test_an_app_without_authentication_says_what_is_missing() -> None:
    client = TestClient(_app(None))
    with pytest.raises(RuntimeError, match="install_authentication"):
        client.post("/things", json={"name": "a"}, headers={"authorization": "t"})


def test_importing_auth_registers_nothing() -> None:
    import logharbor.auth.deps  # noqa: F401

    registries = [
        name
        for name, value in vars(routing).items()
        if not name.startswith("_") and isinstance(value, (list, set, dict))
    ]
    assert registries == []


def test_create_app_installs_the_token_check(tmp_path: Path) -> None:
    from logharbor.app import create_app
    from logharbor.auth.deps import authenticated
    from logharbor.settings import Settings

    app = create_app(Settings(data_dir=str(tmp_path), database_url=f"sqlite:///{tmp_path}/x.db"))
    assert app.state.authentication.dependency is authenticated

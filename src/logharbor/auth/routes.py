"""Sign-up and login (PromptCrafter shapes), ``/user/auth`` and ``PUT /user/:id`` (Arkyn shapes)."""

from __future__ import annotations

from fastapi import APIRouter

from logharbor.auth import queries, services
from logharbor.auth.deps import AppSettings, CurrentUser, Db
from logharbor.auth.schemas import (
    LoginIn,
    SignupIn,
    SignupOut,
    TokenOut,
    UserOut,
    UserUpdateIn,
    UserWithToken,
    user_out,
)
from logharbor.auth.tokens import issue_token
from logharbor.common.errors import BadRequest, Forbidden, NotFound, Unauthorized
from logharbor.common.ids import is_uuid
from logharbor.common.routing import ArkynRoute, PromptCrafterRoute, error_messages

promptcrafter = APIRouter(route_class=PromptCrafterRoute, tags=["auth"])
arkyn = APIRouter(route_class=ArkynRoute, tags=["users"])

_INVALID = "Required fields are missing or invalid."


@promptcrafter.post(
    "/auth/signup",
    status_code=201,
    response_model=SignupOut,
    openapi_extra=error_messages(
        invalid=_INVALID, media_type="Content-Type must be application/json"
    ),
    responses={400: {}, 403: {}, 409: {}, 415: {}},
)
def signup(body: SignupIn, db: Db, settings: AppSettings) -> SignupOut:
    """Create an account; log in afterwards to get a token."""
    return services.sign_up(db, settings, body)


@promptcrafter.post(
    "/auth/login",
    response_model=TokenOut,
    openapi_extra=error_messages(invalid=_INVALID),
    responses={400: {}, 401: {}, 415: {}},
)
def login(body: LoginIn, db: Db, settings: AppSettings) -> TokenOut:
    """Exchange email and password for a token that works on every route."""
    return services.log_in(db, settings, body)


@arkyn.post("/user/auth", response_model=UserWithToken, responses={400: {}, 401: {}})
def user_auth(body: LoginIn, db: Db, settings: AppSettings) -> UserWithToken:
    """Arkyn login: the user and a token."""
    services.check_email(body.email)
    user = services.user_with_password(db, body.email, body.password)
    if user is None:
        raise Unauthorized("Invalid email or password")
    token = issue_token(user["id"], settings.secret_key, settings.token_ttl_seconds)
    return UserWithToken(**user_out(user).model_dump(), token=token)


@arkyn.put("/user/{userId}", response_model=UserOut, responses={400: {}, 401: {}, 403: {}, 404: {}})
def update_user(userId: str, body: UserUpdateIn, principal: CurrentUser, db: Db) -> UserOut:
    """Change your own name or UTC offset."""
    if not is_uuid(userId):
        raise BadRequest(field_errors={"userId": "Invalid id format"})
    if userId.lower() != principal.user_id:
        raise Forbidden("You can only update your own account.")
    changes = body.model_dump(exclude_none=True)
    if "name" in changes:
        changes["name"] = changes["name"].strip() or changes["name"]
    with db.write() as conn:
        user = queries.update_user(conn, principal.user_id, changes)
    if user is None:
        raise NotFound("User not found")
    return user_out(user)

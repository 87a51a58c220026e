"""Sign-up and login (PromptCrafter shapes), ``/user/auth`` and ``PUT /user/:id`` (Arkyn shapes)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.engine import RowMapping

from logharbor.auth import queries
from logharbor.auth.deps import AppSettings, CurrentUser, Db
from logharbor.auth.passwords import hash_password, verify_password
from logharbor.auth.schemas import (
    EMAIL_RE,
    PASSWORD_MAX,
    PASSWORD_MIN,
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


def _check_email(email: str) -> None:
    if not EMAIL_RE.match(email.strip()):
        raise BadRequest(field_errors={"email": "Invalid email format"})


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
    if not settings.allow_signup:
        raise Forbidden("Sign-up is disabled on this server.")
    _check_email(body.email)
    if not PASSWORD_MIN <= len(body.password) <= PASSWORD_MAX:
        raise BadRequest("The password does not meet the security requirements.")
    password_hash = hash_password(body.password)
    with db.write() as conn:
        queries.create_user(
            conn, email=body.email, name=body.name.strip() or body.name, password_hash=password_hash
        )
    return SignupOut(message="User account created successfully.")


def _login(db: Db, email: str, password: str) -> RowMapping | None:
    with db.read() as conn:
        user = queries.get_user_by_email(conn, email)
    if not verify_password(user["password_hash"] if user else None, password) or user is None:
        return None
    return user


@promptcrafter.post(
    "/auth/login",
    response_model=TokenOut,
    openapi_extra=error_messages(invalid=_INVALID),
    responses={400: {}, 401: {}, 415: {}},
)
def login(body: LoginIn, db: Db, settings: AppSettings) -> TokenOut:
    """Exchange email and password for a token that works on every route."""
    user = _login(db, body.email, body.password)
    if user is None:
        raise Unauthorized("Incorrect email or password.")
    return TokenOut(token=issue_token(user["id"], settings.secret_key, settings.token_ttl_seconds))


@arkyn.post("/user/auth", response_model=UserWithToken, responses={400: {}, 401: {}})
def user_auth(body: LoginIn, db: Db, settings: AppSettings) -> UserWithToken:
    """Arkyn login: the user and a token."""
    _check_email(body.email)
    user = _login(db, body.email, body.password)
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

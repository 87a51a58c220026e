"""Signing up and logging in, for the API (auth/routes.py) and the web UI's forms alike."""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

from logharbor.auth import queries
from logharbor.auth.passwords import hash_password, verify_password
from logharbor.auth.schemas import (
    EMAIL_RE,
    PASSWORD_MAX,
    PASSWORD_MIN,
    LoginIn,
    SignupIn,
    SignupOut,
    TokenOut,
)
from logharbor.auth.tokens import issue_token
from logharbor.common.errors import BadRequest, Forbidden, Unauthorized
from logharbor.db.engine import Database
from logharbor.settings import Settings


def check_email(email: str) -> None:
    if not EMAIL_RE.match(email.strip()):
        raise BadRequest(field_errors={"email": "Invalid email format"})


def sign_up(db: Database, settings: Settings, body: SignupIn) -> SignupOut:
    """Create an account; logging in afterwards gives the token."""
    if not settings.allow_signup:
        raise Forbidden("Sign-up is disabled on this server.")
    check_email(body.email)
    if not PASSWORD_MIN <= len(body.password) <= PASSWORD_MAX:
        raise BadRequest("The password does not meet the security requirements.")
    password_hash = hash_password(body.password)
    with db.write() as conn:
        queries.create_user(
            conn, email=body.email, name=body.name.strip() or body.name, password_hash=password_hash
        )
    return SignupOut(message="User account created successfully.")


def user_with_password(db: Database, email: str, password: str) -> RowMapping | None:
    """The user with this email and password; None for a wrong pair (either part)."""
    with db.read() as conn:
        user = queries.get_user_by_email(conn, email)
    if not verify_password(user["password_hash"] if user else None, password) or user is None:
        return None
    return user


def log_in(db: Database, settings: Settings, body: LoginIn) -> TokenOut:
    """Email and password for a token that works on every route."""
    user = user_with_password(db, body.email, body.password)
    if user is None:
        raise Unauthorized("Incorrect email or password.")
    return TokenOut(token=issue_token(user["id"], settings.secret_key, settings.token_ttl_seconds))

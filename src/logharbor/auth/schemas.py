from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from logharbor.common.timestamps import Timestamp

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PASSWORD_MIN = 10
PASSWORD_MAX = 30


class SignupIn(BaseModel):
    name: StrictStr = Field(min_length=1, max_length=200)
    email: StrictStr = Field(max_length=320, examples=["jane@example.com"])
    password: StrictStr = Field(description=f"{PASSWORD_MIN}-{PASSWORD_MAX} characters")


class SignupOut(BaseModel):
    message: str


class LoginIn(BaseModel):
    email: StrictStr
    password: StrictStr


class TokenOut(BaseModel):
    token: str


class UserOut(BaseModel):
    id: str
    name: str
    email: str
    utc: int
    createdAt: Timestamp
    updatedAt: Timestamp


class UserWithToken(UserOut):
    token: str


class UserUpdateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    utc: StrictInt | None = Field(default=None, ge=-12, le=14, description="UTC offset in hours")


def user_out(row: object) -> UserOut:
    return UserOut(
        id=row["id"],  # type: ignore[index]
        name=row["name"],  # type: ignore[index]
        email=row["email"],  # type: ignore[index]
        utc=row["utc"],  # type: ignore[index]
        createdAt=row["created_at"],  # type: ignore[index]
        updatedAt=row["updated_at"],  # type: ignore[index]
    )

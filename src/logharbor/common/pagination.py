"""Pagination: ``?page=&pageLimit=`` in, ``{"data": [...], "meta": {...}}`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from logharbor.common.errors import BadRequest

MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 20

T = TypeVar("T")


class PageMeta(BaseModel):
    page: int
    pageLimit: int
    totalItems: int


class Paginated(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta


def _positive_int(name: str, raw: str | None, default: int, errors: dict[str, str]) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        errors[name] = f"{name} must be an integer greater than or equal to 1"
        return default
    return int(raw)


@dataclass(frozen=True)
class PageRequest:
    page: int
    page_limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_limit

    def envelope(self, items: list[Any], total: int) -> dict[str, Any]:
        return {
            "data": items,
            "meta": {"page": self.page, "pageLimit": self.page_limit, "totalItems": total},
        }


def page_request(
    page: Annotated[str | None, Query(description="1-based page number")] = None,
    page_limit: Annotated[
        str | None, Query(alias="pageLimit", description=f"Items per page (max {MAX_PAGE_LIMIT})")
    ] = None,
) -> PageRequest:
    errors: dict[str, str] = {}
    page_number = _positive_int("page", page, 1, errors)
    limit = _positive_int("pageLimit", page_limit, DEFAULT_PAGE_LIMIT, errors)
    if errors:
        raise BadRequest("Invalid pagination parameters", field_errors=errors)
    # A huge pageLimit is clamped rather than refused: old clients sent any number.
    return PageRequest(page=page_number, page_limit=min(limit, MAX_PAGE_LIMIT))


Page = Annotated[PageRequest, Depends(page_request)]


def optional_page_request(
    page: Annotated[str | None, Query(description="1-based page; paginates when given")] = None,
    page_limit: Annotated[
        str | None, Query(alias="pageLimit", description="Items per page; paginates when given")
    ] = None,
) -> PageRequest | None:
    """For APIs whose lists are plain arrays unless the client asks for pages."""
    if page is None and page_limit is None:
        return None
    return page_request(page, page_limit)


def parse_sort(
    sort: str | None, direction: str | None, allowed: dict[str, Any], default: str
) -> tuple[Any, bool]:
    """The column to order by and whether descending; unknown fields are a 400, not a crash."""
    errors: dict[str, str] = {}
    name = sort or default
    if name not in allowed:
        errors["sort"] = f"sort must be one of: {', '.join(sorted(allowed))}"
    lowered = (direction or "desc").lower()
    if lowered not in ("asc", "desc"):
        errors["sortDirection"] = "sortDirection must be 'asc' or 'desc'"
    if errors:
        raise BadRequest("Invalid sort parameters", field_errors=errors)
    return allowed[name], lowered == "desc"

"""Tokens and cost per route, model and prompt version, from the LLM rollups written at ingest:
they agree with the stored calls, a retried export counts once, old minutes thin like the traffic
rollups, and bad parameters are a 400 naming the parameter. Both databases."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures import event_rows
from fixtures.prompts import create_prompt
from fixtures.sources import create_source, ingest_key
from fixtures.spans import llm_call, post_spans
from fixtures.users import AUser
from logharbor.common.timestamps import iso, parse_iso
from logharbor.stats.rollups import HOUR, MINUTE
from logharbor.stats.thinning import thin_rollups

T0 = parse_iso("2026-01-01T00:00:00Z")  # START, the spans' default start
RANGE = {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-01T03:00:00.000Z"}


def _post(client: TestClient, key: str, items: list[dict[str, Any]]) -> None:
    assert post_spans(client, key, *items) == {}  # nothing refused


def _stats(client: TestClient, user: AUser, sid: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/stats/{sid}/llm", params={**RANGE, **params}, headers=user.headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _stored_calls(client: TestClient, user: AUser, sid: str) -> list[dict[str, Any]]:
    response = client.get(f"/generations/{sid}", params={"pageLimit": 100}, headers=user.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _sums(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "calls": len(calls),
        "failedCalls": sum(1 for c in calls if c["errorType"]),
        "inputTokens": sum(c["inputTokens"] or 0 for c in calls),
        "outputTokens": sum(c["outputTokens"] or 0 for c in calls),
        "cachedTokens": sum(c["cachedTokens"] or 0 for c in calls),
        "cost": pytest.approx(sum(c["cost"] or 0 for c in calls), abs=1e-9),
        "unpricedCalls": sum(1 for c in calls if c["cost"] is None),
        "avgDurationMs": pytest.approx(sum(c["durationMs"] for c in calls) / len(calls)),
    }


def _figures(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in _sums([{"errorType": None, "durationMs": 1, **_ZERO}])}


_ZERO = {"inputTokens": 0, "outputTokens": 0, "cachedTokens": 0, "cost": 0}


@pytest.fixture
def shop(client: TestClient, user: AUser) -> dict[str, Any]:
    """Calls on two routes, three models (one without a price), two versions of one prompt,
    spread over three hours, posted in two exports."""
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    prompt = create_prompt(
        client, user, title="Summarize a ticket", content="Summarize {ticket}", model="gpt-4o"
    )["_id"]
    patched = client.patch(
        f"/prompts/{prompt}", json={"content": "Summarize {ticket} briefly"}, headers=user.headers
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2, patched.text
    _post(
        client,
        key,
        [
            llm_call(1, "/tickets/{id}", "gpt-4o", (1000, 200, 100), prompt=(prompt, 1)),
            llm_call(2, "/tickets/{id}", "gpt-4o", (3000, 500, 0), prompt=(prompt, 2)),
            llm_call(2, "/tickets/{id}", "gpt-4o-mini", (400, 40, 0), prompt=(prompt, 2)),
            llm_call(61, "/search", "gpt-4o-mini", (50, 5, 0), failed=True, duration_ms=30),
        ],
    )
    _post(
        client,
        key,
        [
            llm_call(62, "/search", "gpt-4o-mini", (70, 7, 0)),
            llm_call(130, None, "house-model-1", (10, 1, 0)),
            llm_call(131, "/tickets/{id}", "claude-3-5-haiku", (2000, 300, 500), duration_ms=900),
        ],
    )
    return {"id": sid, "prompt": prompt}


def test_totals_series_and_groups_agree_with_the_stored_calls(
    client: TestClient, user: AUser, shop: dict[str, Any]
) -> None:
    calls = _stored_calls(client, user, shop["id"])
    assert len(calls) == 7
    body = _stats(client, user, shop["id"], interval="1h")
    assert _figures(body["totals"]) == _sums(calls)
    assert body["totals"]["unpricedCalls"] == 1 and body["totals"]["failedCalls"] == 1
    assert [p["time"] for p in body["series"]] == [iso(T0 + timedelta(hours=h)) for h in range(3)]
    by_hour: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for c in calls:
        by_hour[int((parse_iso(c["createdAt"]) - T0).total_seconds() // 3600)].append(c)
    for hour, point in enumerate(body["series"]):
        assert _figures(point) == _sums(by_hour[hour])

    def check(group_by: str, key_of: Any, label_of: Any) -> list[dict[str, Any]]:
        groups = _stats(client, user, shop["id"], groupBy=group_by)["groups"]
        expected: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for c in calls:
            expected[key_of(c)].append(c)
        assert {label_of(g): _figures(g) for g in groups} == {
            k: _sums(v) for k, v in expected.items()
        }
        costs = [g["cost"] for g in groups]
        assert costs == sorted(costs, reverse=True)
        return groups

    routes = check("route", lambda c: c["route"], lambda g: g["route"])
    # "Which endpoint costs us most?": the ticket route, first.
    assert routes[0]["route"] == "/tickets/{id}"
    check("model", lambda c: c["responseModel"] or c["requestModel"], lambda g: g["model"])
    versions = check(
        "promptVersion",
        lambda c: (c["promptId"], c["promptVersion"]),
        lambda g: (g["promptId"], g["promptVersion"]),
    )
    titled = {g["promptVersion"]: g["promptTitle"] for g in versions if g["promptId"]}
    assert titled == {1: "Summarize a ticket", 2: "Summarize a ticket"}


def test_minute_series_and_a_narrow_range_read_only_their_calls(
    client: TestClient, user: AUser, shop: dict[str, Any]
) -> None:
    body = _stats(
        client,
        user,
        shop["id"],
        startDate="2026-01-01T00:02:00Z",
        endDate="2026-01-01T01:02:00Z",
        interval="1m",
        groupBy="model",
    )
    assert len(body["series"]) == 60
    assert [p["calls"] for p in body["series"] if p["calls"]] == [2, 1]  # minutes 2 and 61
    assert body["totals"]["calls"] == 3
    assert {g["model"]: g["calls"] for g in body["groups"]} == {"gpt-4o": 1, "gpt-4o-mini": 2}


def test_a_retried_export_is_counted_once(client: TestClient, user: AUser) -> None:
    sid = create_source(client, user).id
    key = ingest_key(client, user, sid)
    items = [llm_call(5, "/a", "gpt-4o", (10, 1, 0)), llm_call(6, "/a", "gpt-4o", (20, 2, 0))]
    _post(client, key, items)
    _post(client, key, items)
    totals = _stats(client, user, sid)["totals"]
    assert (totals["calls"], totals["inputTokens"]) == (2, 30)


def test_minute_rows_thin_with_the_traffic_rollups_and_totals_stay(
    client: TestClient, user: AUser, shop: dict[str, Any]
) -> None:
    db = client.app.state.db  # type: ignore[attr-defined]
    before = _stats(client, user, shop["id"], groupBy="route")

    def count(resolution: int) -> int:
        return event_rows.rollup_rows(db, "llm_rollups", resolution)

    assert count(MINUTE) > 0
    # Minutes older than two days go; hours and days stay.
    thin_rollups(db, now=T0 + timedelta(days=3), minute_days=2, hour_days=30)
    assert count(MINUTE) == 0 and count(HOUR) > 0
    after = _stats(client, user, shop["id"], groupBy="route")
    assert after["totals"] == before["totals"] and after["groups"] == before["groups"]
    refused = client.get(
        f"/stats/{shop['id']}/llm", params={**RANGE, "interval": "1m"}, headers=user.headers
    )
    assert refused.status_code == 400 and "interval" in refused.json()["fieldErrors"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"groupBy": "pathname"}, "groupBy"),
        ({"interval": "7m"}, "interval"),
        ({"startDate": "yesterday"}, "startDate"),
        ({"endDate": "2026-13-01"}, "endDate"),
        ({"startDate": "2026-01-02T00:00:00Z", "endDate": "2026-01-01T00:00:00Z"}, "startDate"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"startDate": "2020-01-01T00:00:00Z", "interval": "1m"}, "interval"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    client: TestClient, user: AUser, params: dict[str, str], field: str
) -> None:
    sid = create_source(client, user).id
    response = client.get(f"/stats/{sid}/llm", params={**RANGE, **params}, headers=user.headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["name"] == "BadRequest" and field in body["fieldErrors"], body
    assert body["fieldErrors"][field]


def test_another_users_source_is_refused_as_for_traffic_stats(
    client: TestClient, user: AUser, make_user: Any, shop: dict[str, Any]
) -> None:
    stranger = make_user()
    response = client.get(f"/stats/{shop['id']}/llm", headers=stranger.headers)
    assert response.status_code == 403 and response.json()["name"] == "Forbidden", response.text

"""The management forms answer junk with a 4xx page naming the field, and change nothing.

Plain HTTP (no browser): these are the inputs a browser's own form controls would not send.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from fixtures.sources import create_source
from fixtures.users import AUser
from ui.harness import page_errors


@pytest.mark.parametrize(
    ("path", "form", "status", "field"),
    [
        (
            "settings",
            {"name": "Shop", "retentionDays": "1.5"},
            400,
            "retentionDays: Enter a whole number",
        ),
        (
            "settings",
            {"name": "Shop", "retentionDays": "99999999"},
            400,
            "retentionDays: Input should be less than or equal to 36500",
        ),
        (
            "settings",
            {"name": "x" * 201, "retentionDays": ""},
            400,
            "name: String should have at most 200",
        ),
        ("shares", {"email": "ab"}, 400, "email: String should have at least 3"),
        ("shares", {"email": "ghost@example.com"}, 404, "email: No user with this email"),
        ("exceptions/not-a-uuid/resolve", {}, 400, "exceptionId"),
        ("exceptions/0190a8e4-0000-7000-8000-000000000000/reopen", {}, 404, "Exception not found"),
        ("exceptions/0190a8e4-0000-7000-8000-000000000000/explode", {}, 404, "No such action"),
        ("shares/not-a-uuid/revoke", {}, 400, "userId"),
        ("webhooks/not-a-uuid", {"value": "https://x.example"}, 404, "Webhook not found"),
        ("delete", {"confirm": "shop"}, 400, "confirm: Type the source"),
    ],
)
def test_bad_management_input_names_the_field(
    client: TestClient,
    user: AUser,
    owned: dict[str, Any],
    path: str,
    form: dict[str, str],
    status: int,
    field: str,
) -> None:
    answer = client.post(f"/ui/sources/{owned['id']}/{path}", data={"csrf": owned["csrf"], **form})
    assert answer.status_code == status, answer.text
    assert field in page_errors(answer.text)
    source = client.get(f"/traffic-source/{owned['id']}", headers=user.headers).json()
    assert (source["name"], source["retentionDays"]) == ("Shop", None)


def test_webhook_edit_junk_is_refused_per_field(
    client: TestClient, user: AUser, owned: dict[str, Any]
) -> None:
    created = client.post(
        f"/webhooks/{owned['id']}",
        headers=user.headers,
        json={"value": "http://127.0.0.1:9/hook", "level": "fatal"},
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    url = f"/ui/sources/{owned['id']}/webhooks/{hook['id']}"
    base = {"csrf": owned["csrf"], "value": hook["value"], "level": "FATAL"}
    for junk, field in (
        ({"cooldownSeconds": "soon"}, "cooldownSeconds: "),
        ({"cooldownSeconds": "-1"}, "cooldownSeconds: "),
        ({"statusMin": "99"}, "statusMin: "),
        ({"level": "LOUD"}, "level: Level must be"),
        ({"pathnamePrefix": "v1"}, "pathnamePrefix: "),
        ({"value": ""}, "value: Webhook value must not be empty"),
    ):
        answer = client.post(url, data={**base, **junk})
        assert answer.status_code == 400, (junk, answer.text)
        assert field in page_errors(answer.text), junk
    stored = client.get(f"/webhooks/{owned['id']}", headers=user.headers).json()[0]
    assert (stored["level"], stored["cooldownSeconds"], stored["statusMin"]) == (
        hook["level"],
        hook["cooldownSeconds"],
        None,
    )
    # A webhook of another source of the same owner is not reachable through this one.
    other = create_source(client, user, "Other", trafficDomain="https://other.example")
    answer = client.post(
        f"/ui/sources/{other.id}/webhooks/{hook['id']}/delete", data={"csrf": owned["csrf"]}
    )
    assert answer.status_code == 404
    assert len(client.get(f"/webhooks/{owned['id']}", headers=user.headers).json()) == 1

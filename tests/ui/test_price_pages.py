"""The model price table in the pages: defaults, editing one, resetting it, adding a model, and
the same validation as ``PUT /model-prices`` shown under the inputs."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from fixtures.users import AUser, sign_up
from logharbor.ui.session import COOKIE
from ui.harness import LiveServer, csrf_of, sign_in


def _row(page: Page, model: str) -> Any:
    return page.locator(f'[data-testid="price"][data-model="{model}"]')


def test_prices_are_listed_edited_reset_and_added_in_the_browser(
    page: Page, live_server: LiveServer, api: httpx.Client
) -> None:
    user = sign_up(api, "Jane", "jane@example.com")
    auth = user.headers
    sign_in(page, user)
    page.get_by_role("link", name="Prices").click()
    expect(page.get_by_role("heading", name="Model prices")).to_be_visible()

    row = _row(page, "gpt-4o-mini")
    expect(row.get_by_test_id("price-input")).to_have_text("0.15")
    expect(row.get_by_test_id("price-source")).to_have_text("default")

    # A bad number is refused under its input, and nothing is stored.
    row.get_by_text("Edit").click()
    row.locator("input[name=inputPerMillion]").fill("cheap")
    row.get_by_role("button", name="Save price").click()
    row = _row(page, "gpt-4o-mini")
    expect(row.locator(".field-error")).to_contain_text("Must be a number")
    assert not [p for p in api.get("/model-prices", headers=auth).json() if p["source"] == "own"]

    row.locator("input[name=inputPerMillion]").fill("0.2")
    row.get_by_role("button", name="Save price").click()
    row = _row(page, "gpt-4o-mini")
    expect(row.get_by_test_id("price-source")).to_have_text("yours")
    expect(row.get_by_test_id("price-input")).to_have_text("0.2")
    [own] = [p for p in api.get("/model-prices", headers=auth).json() if p["source"] == "own"]
    assert own == {
        "model": "gpt-4o-mini",
        "inputPerMillion": 0.2,
        "outputPerMillion": 0.6,
        "cachedInputPerMillion": 0.075,
        "source": "own",
    }

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_text("Edit").click()
    row.get_by_role("button", name="Reset to default").click()
    row = _row(page, "gpt-4o-mini")
    expect(row.get_by_test_id("price-source")).to_have_text("default")
    expect(row.get_by_test_id("price-input")).to_have_text("0.15")

    add = page.get_by_test_id("add-price")
    add.get_by_label("Model").fill("my-finetune")
    add.get_by_label("Input per million", exact=True).fill("1")
    add.get_by_label("Output per million").fill("-2")
    add.get_by_role("button", name="Add price").click()
    add = page.get_by_test_id("add-price")
    expect(add.locator(".field-error")).to_contain_text("greater than or equal to 0")
    expect(add.locator("input[name=model]")).to_have_value("my-finetune")
    expect(_row(page, "my-finetune")).to_have_count(0)
    add.locator("input[name=outputPerMillion]").fill("2")
    add.get_by_role("button", name="Add price").click()
    row = _row(page, "my-finetune")
    expect(row.get_by_test_id("price-output")).to_have_text("2.0")
    expect(row.get_by_test_id("price-cached")).to_have_text("\u2013")
    expect(row.get_by_test_id("price-source")).to_have_text("yours")


def test_price_forms_need_the_csrf_token_and_a_model(client: TestClient, user: AUser) -> None:
    client.cookies.set(COOKIE, user.token)
    form = {"model": "m1", "inputPerMillion": "1", "outputPerMillion": "2"}
    refused = client.post("/ui/prices", data=form)
    assert refused.status_code == 403, refused.text
    assert client.get("/model-prices", headers=user.headers).json()[0]["source"] == "default"

    csrf = csrf_of(client, "/ui/prices")
    blank = client.post("/ui/prices", data={**form, "model": " ", "csrf": csrf})
    assert blank.status_code == 400 and "Must be 1 to 200 characters" in blank.text
    missing = client.post("/ui/prices", data={"model": "m1", "csrf": csrf})
    assert missing.status_code == 400 and "Required" in missing.text
    gone = client.post("/ui/prices/reset", data={"model": "m1", "csrf": csrf})
    assert gone.status_code == 404
    saved = client.post("/ui/prices", data={**form, "csrf": csrf}, follow_redirects=False)
    assert saved.status_code == 303
    assert client.get("/model-prices", headers=user.headers).json()[0]["model"] == "m1"

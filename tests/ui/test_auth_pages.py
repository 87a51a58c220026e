"""Sign-up, sign-in and sign-out in a real browser, and the session cookie's protections."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from ui.harness import LiveServer


def sign_up(page: Page, email: str, name: str = "Jane Doe", password: str = "password123") -> None:
    page.goto("/ui/signup")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()


def test_sign_up_sign_out_sign_in(page: Page, context: BrowserContext) -> None:
    page.goto("/")
    # Signed out: the home page sends you to the login, remembering where you were going.
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2F$"))
    page.get_by_role("link", name="Create one").click()

    sign_up(page, "jane@example.com")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Traffic sources")).to_be_visible()
    expect(page.locator(".who")).to_have_text("Jane Doe")

    cookie = next(c for c in context.cookies() if c["name"] == "logharbor_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    # JavaScript on the page cannot read the token.
    assert "logharbor_session" not in page.evaluate("document.cookie")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    assert not [c for c in context.cookies() if c["name"] == "logharbor_session"]

    page.get_by_label("Email").fill("jane@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    # The email stays filled in; the password does not.
    expect(page.get_by_label("Email")).to_have_value("jane@example.com")
    expect(page.get_by_label("Password")).to_have_value("")

    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Traffic sources")).to_be_visible()


def test_sign_up_errors_name_the_field(page: Page) -> None:
    sign_up(page, "not-an-email", password="short")
    expect(page.locator(".field-error")).to_have_count(1)
    expect(page.locator("label", has_text="Password").locator(".field-error")).to_contain_text(
        "10 to 30 characters"
    )
    sign_up(page, "not-an-email")
    expect(page.locator("label", has_text="Email").locator(".field-error")).to_have_text(
        "Invalid email format"
    )
    sign_up(page, "taken@example.com")
    page.get_by_role("button", name="Sign out").click()
    sign_up(page, "TAKEN@example.com")
    expect(page.locator("label", has_text="Email").locator(".field-error")).to_have_text(
        "An account with this email already exists."
    )
    # The values typed are kept (except the password).
    expect(page.get_by_label("Name")).to_have_value("Jane Doe")


def test_login_redirect_is_kept_and_only_local(page: Page, live_server: LiveServer) -> None:
    with live_server.api() as api:
        api.post(
            "/auth/signup",
            json={"name": "Max", "email": "max@example.com", "password": "password123"},
        )
    page.goto("/ui/login?next=https://evil.example/steal")
    page.get_by_label("Email").fill("max@example.com")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/")

    page.goto("/ui/prompts")
    page.context.clear_cookies()
    page.goto("/ui/prompts?q=x")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fprompts%3Fq%3Dx$"))


def test_forms_refuse_cross_site_posts_and_missing_csrf(live_server: LiveServer) -> None:
    with live_server.api() as api:
        api.post(
            "/auth/signup",
            json={"name": "Eve", "email": "eve@example.com", "password": "password123"},
        )
        form = {"email": "eve@example.com", "password": "password123", "next": "/"}
        foreign = api.post("/ui/login", data=form, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert "set-cookie" not in foreign.headers

        ok = api.post("/ui/login", data=form, headers={"Origin": live_server.url})
        assert ok.status_code == 303
        assert "HttpOnly" in ok.headers["set-cookie"]
        assert "SameSite=lax" in ok.headers["set-cookie"]
        # The API itself never accepts the cookie: it wants an Authorization header.
        assert api.get("/traffic-source").status_code == 400

        # Signed in, a form without the CSRF token is refused even from the same origin.
        no_token = api.post("/ui/logout", data={"x": "1"}, headers={"Origin": live_server.url})
        assert no_token.status_code == 403
        assert "expired" in no_token.text
        # Not a form at all: 400, not a crash.
        wrong_type = api.post("/ui/logout", json={}, headers={"Origin": live_server.url})
        assert wrong_type.status_code == 400

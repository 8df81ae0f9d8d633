"""KTH single sign-on end to end in headless Chromium against a real OpenID Connect provider process
(django-oidc-provider, tests/integrations/oidc_site): redirect, the provider's login, callback, session,
logout; a forged or expired id_token and a wrong state are refused with a clear page."""

from __future__ import annotations

import re

import pytest

from examination.models import StudentProfile
from tests.test_exam_browser import ARGS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context()
        context.set_default_timeout(30_000)
        yield context.new_page()
        browser.close()


def _sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.click("#sso")
    page.fill("#kth-username", username)
    page.fill("#kth-password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_a_new_student_signs_in_with_kth_and_out_again(transactional_db, sso, live_server, browser_page,
                                                       course_round, settings):
    from playwright.sync_api import expect

    from courseware.models import Enrollment, Role

    settings.LOCAL_LOGIN_FOR_STUDENTS = False
    sso.add_user("nyberg", "kth-pw-2601", kthid="u1nyberg", email="nils.nyberg@kth.se", given_name="Nils",
                 family_name="Nyberg")
    page = browser_page
    _sign_in(page, live_server.url, "nyberg", "kth-pw-2601")
    expect(page.locator("header .who")).to_have_text("Nils Nyberg")
    profile = StudentProfile.objects.select_related("user").get(kth_id="u1nyberg")
    assert (profile.user.username, profile.user.email) == ("nyberg", "nils.nyberg@kth.se")
    assert not profile.user.has_usable_password()

    # Known by the KTH id, not the e-mail: a changed address updates the same person.
    Enrollment.objects.create(user=profile.user, round=course_round, role=Role.STUDENT)
    sso.add_user("nyberg", "kth-pw-2601", kthid="u1nyberg", email="nils@kth.se", given_name="Nils",
                 family_name="Nyberg")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))  # back from the provider's end-session endpoint
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url  # our session is gone ...
    _sign_in(page, live_server.url, "nyberg", "kth-pw-2601")  # ... and so is the provider's: it asks again
    expect(page.locator("h1")).to_contain_text("HT26")
    assert StudentProfile.objects.filter(user__email="nils@kth.se").get().kth_id == "u1nyberg"
    assert StudentProfile.objects.count() == 1


@pytest.mark.parametrize("mode, reason", [
    ("forged", "did not carry a valid signature"),
    ("expired", "had expired"),
])
def test_a_forged_or_expired_id_token_is_refused(transactional_db, sso, live_server, browser_page, mode, reason):
    from playwright.sync_api import expect

    sso.add_user("mallory", "kth-pw-2601", kthid="u1mallor")
    sso.set_mode(mode)
    _sign_in(browser_page, live_server.url, "mallory", "kth-pw-2601")
    expect(browser_page.locator("h1")).to_have_text("Sign-in refused")
    expect(browser_page.locator("#reason")).to_contain_text(reason)
    browser_page.goto(f"{live_server.url}/")
    assert "/login/" in browser_page.url
    assert not StudentProfile.objects.filter(kth_id="u1mallor").exists()


def test_a_wrong_state_is_refused(transactional_db, sso, live_server, browser_page):
    from playwright.sync_api import expect

    sso.add_user("eve", "kth-pw-2601", kthid="u1eve000")
    page = browser_page
    # Start a sign-in (this browser's session now holds a state), then arrive at the callback with a code
    # and a state this browser never had: a callback URL taken from someone else's sign-in.
    page.goto(f"{live_server.url}/login/")
    page.click("#sso")
    expect(page.locator("#kth-username")).to_be_visible()
    page.goto(f"{live_server.url}/sso/callback/?code=stolen-code&state=someone-elses-state")
    expect(page.locator("h1")).to_have_text("Sign-in refused")
    expect(page.locator("#reason")).to_contain_text("state does not match")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url


def test_local_password_login_can_be_switched_off_for_students(client, people, settings):
    def logs_in(name: str) -> bool:
        client.logout()
        response = client.post("/login/", {"username": name, "password": f"{name}-pw-2601"})
        return response.status_code == 302

    settings.LOCAL_LOGIN_FOR_STUDENTS = False
    assert not logs_in("alice")
    assert logs_in("erik")  # staff keep their password
    page = client.get("/login/").content.decode()
    assert "the form below is for staff" not in page  # no SSO configured here: no KTH button either
    settings.LOCAL_LOGIN_FOR_STUDENTS = True
    assert logs_in("alice")

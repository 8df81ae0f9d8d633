"""Issue 17 in real headless Chromium against a live server: a student asks for a review of a run; a TA
finds the renamed copy on the similarity page, compares the pair side by side, then answers the request
from the queue and grades the submission again; the student reads the answer; the audit log holds the
question, the answer and the new run. Screenshots: /tmp/similarity.png, /tmp/similarity_pair.png,
/tmp/regrade_answered.png."""

from __future__ import annotations

import re

import pytest

from courseware.models import GradingRun
from examination.models import AuditEntry
from review.models import RegradeRequest

from .test_exam_browser import ARGS, _login
from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)
from .test_similarity import INDEPENDENT, RIGHT, SOLUTION, renamed, student, upload
from .test_web_security import quiet_broker  # noqa: F401 (fixture)

REASON = "The nll check failed, but my model fits both branches in my own plot."
ANSWER = "The check was fixed after your run; grading again."


@pytest.mark.browser
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("quiet_broker")
def test_a_ta_compares_a_copied_pair_and_answers_a_regrade_request(transactional_db, live_server, people,
                                                                   assignment, settings, tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM below runs beside Playwright's loop
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    alice, bob = people["alice"], people["bob"]
    carol = student(assignment.round, "carol")
    mine = upload(assignment, alice, SOLUTION, RIGHT)
    copied = upload(assignment, bob, renamed(SOLUTION), RIGHT)
    upload(assignment, carol, INDEPENDENT, {**RIGHT, "em_step": "ee" * 8})
    round_id, base = assignment.round.pk, live_server.url

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(30_000)
        problems: list[str] = []
        context.on("console", lambda m: problems.append(f"{m.location} {m.text}") if m.type == "error" else None)
        page = context.new_page()

        # Alice asks for a review of her run, with a reason.
        _login(page, base, "alice")
        page.goto(f"{base}/submissions/{mine.pk}/")
        page.get_by_label("What should staff review, and why?").fill(REASON)
        page.get_by_role("button", name="Ask for a review").click()
        expect(page.locator(".flash.success")).to_contain_text("Your request is with the course staff")
        expect(page.locator("#review")).to_contain_text("Waiting for staff")
        expect(page.get_by_role("button", name="Ask for a review")).to_have_count(0)  # one open request per run
        page.get_by_role("button", name="Log out").click()

        # Tina, a TA, opens the similarity page from the examination pages' navigation.
        _login(page, base, "tina")
        page.goto(f"{base}/exam/rounds/{round_id}/")
        page.locator("nav.exam").get_by_role("link", name="Similarity").click()
        expect(page.locator("h1")).to_contain_text("Similarity across the cohort")
        first = page.locator("#pairs tbody tr").first
        expect(first).to_contain_text(f"#{mine.pk}")
        expect(first).to_contain_text(f"#{copied.pk}")
        expect(first.locator("td").nth(3)).to_have_text(re.compile(r"^(9\d|100) %$"))
        page.screenshot(path="/tmp/similarity.png", full_page=True)

        first.get_by_role("link", name="side by side").click()
        expect(page.locator("h1")).to_contain_text("Side by side")
        expect(page.locator("#left mark").first).to_be_visible()
        # bob's renamed code is still marked as matching (whichever passage comes first)
        expect(page.locator("#right mark", has_text="log_scale").first).to_be_visible()
        expect(page.locator("#outputs tbody tr.same")).to_have_count(len(RIGHT))
        page.screenshot(path="/tmp/similarity_pair.png", full_page=True)

        # Then the regrade queue: she answers Alice and grades the submission again.
        page.locator("nav.exam").get_by_role("link", name="Regrade requests").click()
        request_card = page.locator("article.regrade-request").first
        expect(request_card).to_contain_text(REASON)
        request_card.get_by_label("Answer to the student").fill(ANSWER)
        request_card.get_by_label("Grade the submission again (a new run; this one is kept)").check()
        request_card.get_by_role("button", name="Send the answer").click()
        expect(page.locator(".flash.success")).to_contain_text("a new grading run is queued")
        expect(page.locator("#answered")).to_contain_text(ANSWER)
        page.get_by_role("button", name="Log out").click()

        # Alice reads the answer on her submission page; the new run is the one the page follows.
        _login(page, base, "alice")
        page.goto(f"{base}/submissions/{mine.pk}/")
        expect(page.locator("#review")).to_contain_text(ANSWER)
        expect(page.locator("#review")).to_contain_text("Answered and graded again")
        expect(page.locator("#run-status")).to_contain_text("Queued")
        page.screenshot(path="/tmp/regrade_answered.png", full_page=True)
        browser.close()

    assert not [m for m in problems if re.search(r"Content Security Policy|Refused", m)], problems
    request = RegradeRequest.objects.get()
    assert request.status == "regraded" and request.answered_by == people["tina"]
    assert list(mine.runs.order_by("pk").values_list("status", flat=True)) == [GradingRun.Status.DONE,
                                                                               GradingRun.Status.QUEUED]
    logged = set(AuditEntry.objects.filter(round=assignment.round).values_list("action", flat=True))
    assert {"regrade.requested", "regrade.answered", "submission.regraded"} <= logged

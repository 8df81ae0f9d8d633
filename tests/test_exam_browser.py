"""The examination workflow in real headless Chromium against a live server: an examiner holds an oral,
the note survives a closed tab and an expired login, a grade is decided and exported for Ladok, and the
student sees it. Screenshots: /tmp/oral_session.png and /tmp/student_grade.png."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs

import pytest
from django.core.management import call_command
from django.utils import timezone

from examination.models import ComponentRecord, GradeDecision, OralAnswer, OralQuestion, StudentProfile

from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
NOTE = "Explained that squared error gives the conditional mean, between the branches"


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pw-2601")
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_examiner_holds_an_oral_decides_exports_and_the_student_sees_it(
        transactional_db, live_server, people, assignment, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded CI machine can take more than the default 5 s to answer

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the ORM below runs beside Playwright's loop
    alice, erik = people["alice"], people["erik"]
    alice.first_name, alice.last_name = "Alice", "Andersson"
    alice.save()
    erik.first_name, erik.last_name = "Erik", "Examiner"
    erik.save()
    StudentProfile.objects.create(user=alice, kth_id="u1alice0")
    call_command("import_oral_questions", stdout=io.StringIO())
    graded_submission(assignment, alice)
    ComponentRecord.objects.create(round=assignment.round, student=alice, component="ethics", status="passed")
    round_id, base = assignment.round.pk, live_server.url
    first_question = OralQuestion.objects.filter(part__slug="mdn").order_by("order").first().text

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        context.set_default_timeout(30_000)
        problems: list[str] = []
        context.on("console", lambda m: problems.append(f"{m.page.url if m.page else ''} {m.location} {m.text}") if m.type == "error" else None)
        page = context.new_page()

        # The examiner opens an oral session for Alice from her page, over a slow connection: the page
        # shows before its scripts arrive (they are held here), and she marks the first answer passed at
        # once. Nothing can save it yet; when the scripts arrive, they save it.
        _login(page, base, "erik")
        page.goto(f"{base}/exam/rounds/{round_id}/students/{alice.pk}/")
        held: list = []
        context.route("**/htmx-2.min.js", lambda route: held.append(route))
        page.get_by_role("button", name="Open an oral session").click()
        expect(page.locator("h1")).to_contain_text("Oral exam 1: parts 1–3")
        session_url = page.url
        expect(page.locator(".evidence")).to_contain_text("tier E")
        expect(page.locator("table.checks")).to_contain_text("nll")
        first = page.locator("form.autosave").first
        first.get_by_label("passed").check()
        expect(first.locator(".save-status")).to_have_text("")
        assert len(held) == 1, "the page did not ask for htmx while the test held it"
        held[0].continue_()
        context.unroute("**/htmx-2.min.js")
        expect(first.locator(".save-status")).to_contain_text("v1")

        # Then a note typed with no submit; the debounce saves it.
        with page.expect_response(lambda r: r.request.method == "POST" and "/answers/" in r.url
                                  and parse_qs(r.request.post_data or "").get("note") == [NOTE]) as saved:
            first.locator("textarea").press_sequentially(NOTE, delay=15)
        assert saved.value.status == 200
        expect(first.locator(".save-status")).to_contain_text("Saved")

        # Close the tab mid-session and come back: the note is there.
        page.close()
        page = context.new_page()
        page.goto(session_url)
        first = page.locator("form.autosave").first
        expect(first.locator("textarea")).to_have_value(NOTE)
        expect(first.get_by_label("passed")).to_be_checked()

        # The part's outcome. Something outside our markup (an extension, a screenshot tool) has left a
        # style on the form's version field, which each save replaces: the swap must not copy it (the CSP
        # refuses inline styles, and the check below the browser block would see the refusal).
        part_form = page.locator(".part-outcome form.autosave")
        part_form.locator("input[name=version]").evaluate("field => { field.style.outline = '1px solid red'; }")
        part_form.get_by_label("passed").check()
        expect(part_form.locator(".save-status")).to_contain_text("Saved")

        # The login expires mid-note: a clear 401 beside the text, which stays; after logging in again
        # (in another tab) "save again" saves it.
        second = page.locator("form.autosave").nth(1)
        context.clear_cookies(name="sessionid")
        second.locator("textarea").press_sequentially("Hesitated on log-sum-exp", delay=15)
        expect(second.locator(".save-status")).to_contain_text("login has expired (401)")
        expect(second.locator("textarea")).to_have_value("Hesitated on log-sum-exp")
        other_tab = context.new_page()
        _login(other_tab, base, "erik")
        other_tab.close()
        second.get_by_role("button", name="save again").click()
        expect(second.locator(".save-status")).to_contain_text("Saved")
        # Playwright's screenshot also leaves styles on inputs; a save still in flight copes (see above).
        page.screenshot(path="/tmp/oral_session.png", full_page=True)

        # The decision: the proposal is E (E part passed with oral, ethics quiz passed); decide E.
        page.goto(f"{base}/exam/rounds/{round_id}/students/{alice.pk}/")
        expect(page.locator("section.card").first).to_contain_text("Proposal: E")
        page.get_by_label("Grade").select_option("E")
        page.get_by_role("button", name="Decide").click()
        expect(page.locator("#decide")).to_contain_text("Decision: E")

        # The Ladok export, downloaded.
        page.goto(f"{base}/exam/rounds/{round_id}/")
        with page.expect_download() as download:
            page.get_by_role("link", name="Ladok CSV").click()
        rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
        assert download.value.suggested_filename == "DD2601-HT26-ladok.csv"
        assert rows == [{"kth_id": "u1alice0", "course_code": "DD2601", "module_code": "LAB1", "grade": "E",
                         "examination_date": timezone.localdate().isoformat(), "examiner": "Erik Examiner",
                         "name": "Alice Andersson"}]

        # The student sees the grade and the outcomes, not the notes.
        page.get_by_role("button", name="Log out").click()
        _login(page, base, "alice")
        page.goto(f"{base}/exam/rounds/{round_id}/me/")
        expect(page.locator("#grade")).to_contain_text("Grade: E")
        expect(page.locator("body")).to_contain_text(first_question)
        expect(page.locator("body")).not_to_contain_text("conditional mean, between the branches")
        page.screenshot(path="/tmp/student_grade.png", full_page=True)
        browser.close()

    assert not [m for m in problems if re.search(r"Content Security Policy|Refused", m)], problems
    answers = OralAnswer.objects.filter(session__student=alice).order_by("question__order")
    assert answers[0].note == NOTE and answers[1].note == "Hesitated on log-sum-exp"
    assert GradeDecision.current(assignment.round, alice).grade == "E"

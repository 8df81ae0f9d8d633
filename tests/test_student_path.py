"""The whole path of a student we have never seen, as issue 14 asks for it, against real counterparts: the
test Canvas (tests/integrations: RS256 launches, JWKS, AGS), our live server over HTTP, the installed `dd2601`
client as a process, a real Celery worker grading in the Docker sandbox, and a real SMTP server (aiosmtpd).

Canvas launch (a new account, enrolled in the round) → the parts on the web → a token from the profile page
→ `dd2601 login`, `parts`, `submit --watch` (the run live, to its result) → the result e-mail → the
examiner decides in the browser → the grade reaches Canvas as a score."""

from __future__ import annotations

import re
import time

import pytest
import requests

from courseware.models import GradingRun, Submission
from examination.models import GradeDecision, StudentProfile
from tests.integrations.conftest import canvas, lti_platform, smtp_server  # noqa: F401 (issue 14's fixtures)
from tests.integrations.lti_platform import INSTRUCTOR, LEARNER

from .conftest import point_producer_at
from .test_cli import Cli, _lines, _wait_for, solution_folder

pytestmark = [pytest.mark.sandbox, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def form_post(session: requests.Session, url: str, data: dict) -> requests.Response:
    """A form sent as the browser sends it: with the CSRF cookie's token."""
    return session.post(url, data={"csrfmiddlewaretoken": session.cookies["csrftoken"], **data},
                        headers={"Referer": url}, timeout=30)


@pytest.mark.timeout(600)
def test_a_new_student_from_canvas_through_the_terminal_to_a_score_in_canvas(
        canvas, course_round, smtp_server, start_worker, tmp_path, settings, django_user_model):  # noqa: F811
    site = canvas.site_url
    platform = canvas.platform
    platform.add_user("canvas-nora", name="Nora Ny", email="nora@kth.se", roles=[LEARNER], kth_id="u1nora00")
    platform.add_user("canvas-eva", name="Eva Ek", email="eva@kth.se", roles=[INSTRUCTOR], kth_id="u1eva000")
    assert not django_user_model.objects.filter(email="nora@kth.se").exists()

    broker = tmp_path / "broker"
    (broker / "control").mkdir(parents=True)
    point_producer_at("filesystem://", {"data_folder_in": str(broker), "data_folder_out": str(broker),
                                        "control_folder": str(broker / "control"), "store_processed": False})
    worker = start_worker("filesystem://", broker_dir=broker, extra_env=smtp_server.env)

    # 1. Nora opens LAB1 from Canvas: a new account, a student of the round, signed in.
    browser = requests.Session()
    landing = canvas.launch(browser, "canvas-nora")
    assert landing.url.endswith(f"/rounds/{course_round.pk}/"), landing.text[:1000]
    nora = StudentProfile.objects.get(kth_id="u1nora00").user
    assert "Mixture density networks" in landing.text  # 2. the parts, on the web

    # 3. A token from her profile page, then the terminal.
    browser.get(f"{site}/profile/", timeout=30)
    made = form_post(browser, f"{site}/profile/tokens/", {"name": "laptop", "days": 30, "scope": "student"})
    token = re.search(r"dd2601_[A-Za-z0-9_-]{40,}", made.text).group(0)
    cli = Cli(tmp_path, site)
    assert cli.login(token).returncode == 0
    parts = cli("parts")
    assert re.search(r"^mdn\s+E\s+.*\byes\b", parts.stdout, re.M), parts.stdout

    submitting = cli.popen("submit", "mdn", str(solution_folder(tmp_path)), "--declaration", "No help; the course book.",
                           "--watch")
    lines = _lines(submitting)
    _wait_for(lines, "Submitted: #")
    _wait_for(lines, "running", timeout=120)
    graded = _wait_for(lines, "graded:", timeout=300)
    assert submitting.wait(30) == 0
    submission = Submission.objects.get(submitter=nora)
    run = submission.runs.get()
    assert run.status == GradingRun.Status.DONE and run.points, (run.error_reason, worker.log()[-3000:])
    assert f"{run.points:g} of {run.max_points:g} points" in graded
    result = cli("result")
    assert result.returncode == (0 if run.all_passed else 1) and "✓" in result.stdout, (
        [(c.name, c.status, c.feedback[:200]) for c in run.checks.filter(passed=False)])

    # 4. The e-mail: a link to the result, nothing of the hidden checks.
    mail = smtp_server.wait_for(1, timeout=60)
    assert mail, worker.log()[-3000:]
    result_mail = mail[0]
    assert result_mail["To"] == "nora@kth.se" and result_mail["Subject"].startswith("Result ready")
    body = result_mail.get_payload(decode=True).decode()
    assert f"/submissions/{submission.pk}/" in body and "nll" not in body

    # 5. The examiner (from Canvas too) decides; the grade reaches Canvas as a score.
    examiner = requests.Session()
    canvas.launch(examiner, "canvas-eva")
    student_page = f"{site}/exam/rounds/{course_round.pk}/students/{nora.pk}/"
    examiner.get(student_page, timeout=30)
    decided = form_post(examiner, f"{student_page}decide/", {"grade": "E", "rationale": "Part 1 only, whole-path test"})
    assert decided.status_code == 200 and decided.url.rstrip("/").endswith(str(nora.pk)), decided.text[-1500:]
    assert GradeDecision.current(course_round, nora).grade == "E"
    deadline = time.monotonic() + 60
    while not platform.scores and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [s["userId"] for s in platform.scores] == ["canvas-nora"], worker.log()[-3000:]
    assert platform.scores[0]["scoreGiven"] > 0
    grade_mail = smtp_server.wait_for(2, timeout=60)
    assert len(grade_mail) == 2 and "decided" in grade_mail[1]["Subject"]

"""Swedish and English (Django's i18n): the browser's language by default, the user's switch (stored on the
account, so it follows them to another browser and into e-mails), every student page and the main staff
pages in Swedish with KTH's terms (betyg, muntlig examination, komplettering for Fx), refusals in the
language asked for, the command-line client's messages, and catalogues that are complete and compiled."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
import sys

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from api.models import AccessToken
from courseware.models import Assignment
from examination.models import GradeDecision
from examination.policy import Proposal
from languages.models import LanguagePreference

from .conftest import REPO
from .test_exam_workflow import fast_password_hashing, graded_submission  # noqa: F401 (autouse fixture)

SV = {"HTTP_ACCEPT_LANGUAGE": "sv-SE,sv;q=0.9,en;q=0.5"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}
CATALOGUES = [REPO / "locale" / "sv" / "LC_MESSAGES" / "django.po",
              REPO / "cli" / "src" / "dd2601" / "locale" / "sv" / "LC_MESSAGES" / "dd2601.po"]


def lang_of(response) -> str:
    return re.search(r'<html lang="([a-z-]+)"', response.content.decode()).group(1)


# ---- choosing the language ------------------------------------------------------------------------------------

def test_the_browsers_language_is_the_default(client):
    assert lang_of(client.get(reverse("login"), **SV)) == "sv"
    assert "Logga in" in client.get(reverse("login"), **SV).content.decode()
    english = client.get(reverse("login"), **EN)
    assert lang_of(english) == "en" and "Log in" in english.content.decode()
    assert lang_of(client.get(reverse("login"))) == "en"  # no preference at all: English


def test_the_switch_is_stored_and_follows_the_user_to_another_browser(client, people, django_user_model):
    from django.test import Client

    client.force_login(people["alice"])
    response = client.post(reverse("set_language"), {"language": "sv", "next": "/profile/"}, **EN)
    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert LanguagePreference.objects.get(user=people["alice"]).language == "sv"
    assert lang_of(client.get(reverse("profile"), **EN)) == "sv"

    elsewhere = Client()  # another browser: no cookie, asks for English
    elsewhere.force_login(people["alice"])
    page = elsewhere.get(reverse("profile"), **EN)
    assert lang_of(page) == "sv" and "Åtkomsttoken" in page.content.decode()

    visitor = Client()  # not signed in: the switch's cookie decides
    visitor.post(reverse("set_language"), {"language": "sv", "next": "/login/"}, **EN)
    assert lang_of(visitor.get(reverse("login"), **EN)) == "sv"
    assert client.post(reverse("set_language"), {"language": "xx", "next": "/"}).status_code == 302
    assert LanguagePreference.objects.get(user=people["alice"]).language == "sv"  # an unknown language changes nothing


# ---- every page -------------------------------------------------------------------------------------------------

def english_phrases() -> list[str]:
    """The catalogue's English texts of three words or more, without placeholders or markup: none of these
    may be left on a page shown in Swedish."""
    catalogue = gettext.GNUTranslations(open(REPO / "locale" / "sv" / "LC_MESSAGES" / "django.mo", "rb"))
    phrases = []
    for key, value in catalogue._catalog.items():
        msgid = key[0] if isinstance(key, tuple) else key
        msgid = msgid.split("\x04")[-1]
        if msgid and len(msgid.split()) >= 3 and not re.search(r"[%<&{]", msgid) and value != msgid:
            phrases.append(msgid)
    return phrases


@pytest.fixture
def full_round(people, assignment):
    """Alice has a graded submission and a decided grade of Fx; Erik examines."""
    submission = graded_submission(assignment, people["alice"], failing=("nll",))
    GradeDecision.decide(course_round=assignment.round, student=people["alice"], grade="FX", rationale="nll too high",
                         by=people["erik"], proposal=Proposal("FX", ("the NLL check failed",)))
    return submission


def pages(submission, assignment) -> dict[str, tuple[str, str]]:
    round_id = assignment.round_id
    run = submission.latest_run
    return {
        "round": ("alice", reverse("round", args=[round_id])),
        "assignment": ("alice", reverse("assignment", args=[assignment.pk])),
        "submission": ("alice", reverse("submission", args=[submission.pk])),
        "my results": ("alice", reverse("exam:my_results", args=[round_id])),
        "groups": ("alice", reverse("exam:groups", args=[round_id])),
        "profile": ("alice", reverse("profile")),
        "dashboard": ("erik", reverse("exam:dashboard", args=[round_id])),
        "staff runs": ("erik", reverse("staff_runs", args=[round_id])),
        "staff run": ("erik", reverse("staff_run", args=[run.pk])),
    }


def test_the_pages_are_in_swedish_with_kths_terms(client, people, assignment, full_round, django_capture_on_commit_callbacks):
    phrases = english_phrases()
    assert len(phrases) > 100
    for name, (who, url) in pages(full_round, assignment).items():
        client.force_login(people[who])
        english = client.get(url, **EN).content.decode()
        swedish_page = client.get(url, **SV)
        swedish = swedish_page.content.decode()
        assert swedish_page.status_code == 200 and lang_of(swedish_page) == "sv", name
        left = [p for p in phrases if p in english and p in swedish]
        assert not left, f"{name} still says in Swedish: {left}"
        assert "Logga ut" in swedish and "Log out" not in swedish, name
    client.force_login(people["alice"])
    results = client.get(reverse("exam:my_results", args=[assignment.round_id]), **SV).content.decode()
    assert "Betyg:" in results and "Muntliga examinationer" in results
    assert "komplettering" in results and "Fx är ett underkänt betyg" in results
    round_page = client.get(reverse("round", args=[assignment.round_id]), **SV).content.decode()
    assert "muntlig examination" in round_page and "betyg A–F" in round_page


def test_a_refusal_is_in_the_language_asked_for(client, people, assignment):
    Assignment.objects.filter(pk=assignment.pk).update(opens_at=timezone.now() + timezone.timedelta(days=1))
    token = AccessToken.issue(people["alice"], name="t", days=1)[1]
    url = f"/api/v1/assignments/{assignment.pk}/submissions"
    data = {"files": [], "declaration": "inga", "client_token": "x"}
    from django.core.files.uploadedfile import SimpleUploadedFile

    data["files"] = [SimpleUploadedFile("mdn.py", b"x = 1\n")]
    swedish = client.post(url, data, HTTP_AUTHORIZATION=f"Bearer {token}", **SV).json()
    data["files"] = [SimpleUploadedFile("mdn.py", b"x = 1\n")]
    english = client.post(url, data, HTTP_AUTHORIZATION=f"Bearer {token}", **EN).json()
    assert swedish["kind"] == english["kind"] == "not_open"
    assert swedish["detail"].startswith("Den här delen öppnar") and english["detail"].startswith("This part opens at")
    client.force_login(people["alice"])
    page = client.get(reverse("assignment", args=[assignment.pk]), **SV).content.decode()
    assert swedish["detail"] in page  # the web page says it in the same words


def test_an_email_goes_out_in_the_language_the_user_chose(people, assignment, settings):
    from notifications.models import Kind, Notification
    from notifications.tasks import send

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alice = people["alice"]
    alice.email = "alice@kth.se"
    alice.save()
    run = graded_submission(assignment, alice).latest_run
    LanguagePreference.choose(alice, "sv")
    sv_note = Notification.objects.create(user=alice, kind=Kind.RESULT_READY, key=f"run:{run.pk}")
    send.apply(args=[sv_note.pk])
    LanguagePreference.choose(alice, "en")
    later = graded_submission(assignment, alice).latest_run
    en_note = Notification.objects.create(user=alice, kind=Kind.RESULT_READY, key=f"run:{later.pk}")
    send.apply(args=[en_note.pk])
    subjects = [m.subject for m in mail.outbox]
    assert subjects[0].startswith("Resultat klart") and "Hej " in mail.outbox[0].body
    assert subjects[1].startswith("Result ready") and "Hello " in mail.outbox[1].body


# ---- the command-line client ----------------------------------------------------------------------------------------

def test_the_cli_speaks_swedish_by_choice_or_from_the_site(transactional_db, live_server, people, assignment, tmp_path):
    from .test_cli import Cli

    cli = Cli(tmp_path, live_server.url)
    alice = people["alice"]
    cli.login(AccessToken.issue(alice, name="t", days=1)[1])
    english = cli("parts")
    assert "YOUR DEADLINE" in english.stdout
    swedish = cli("--lang", "sv", "parts")
    assert "DIN DEADLINE" in swedish.stdout and "ja" in swedish.stdout

    LanguagePreference.choose(alice, "sv")  # chosen on the site: the next login remembers it
    cli.login(AccessToken.issue(alice, name="t2", days=1)[1])
    Assignment.objects.filter(pk=assignment.pk).update(opens_at=timezone.now() + timezone.timedelta(days=1))
    refused = cli("submit", "mdn", str(REPO / "assignments" / "lab1" / "mdn" / "solution"), "--declaration", "inga")
    assert refused.returncode == 1
    assert "Lämnar in 1 fil" in refused.stdout and "Den här delen öppnar" in refused.stderr  # client and server alike
    assert "Inloggad" in cli.login(AccessToken.issue(alice, name="t3", days=1)[1]).stdout


# ---- the catalogues ---------------------------------------------------------------------------------------------

def msgfmt() -> str:
    found = shutil.which("msgfmt")
    if found is None:
        pytest.fail("gettext is not installed; bin/test installs it with apt-get")
    return found


@pytest.mark.parametrize("po", CATALOGUES, ids=["site", "cli"])
def test_every_message_is_translated_and_the_compiled_catalogue_is_current(po, tmp_path):
    text = po.read_text()
    assert "#, fuzzy" not in text, f"{po} has fuzzy entries: review them and remove the flag"
    empty = re.findall(r'\nmsgid "(.+)"\nmsgstr ""\n\n', text)
    assert not empty, f"{po} has untranslated messages: {empty[:5]}"
    compiled = tmp_path / "check.mo"
    subprocess.run([msgfmt(), "--check", "-o", str(compiled), str(po)], check=True)
    committed = po.with_suffix(".mo")
    fresh = gettext.GNUTranslations(open(compiled, "rb"))._catalog
    assert gettext.GNUTranslations(open(committed, "rb"))._catalog == fresh, (
        f"{committed} is older than {po.name}: compile it (python manage.py compilemessages, or msgfmt for the CLI)")


def test_no_marked_string_is_missing_from_the_site_catalogue(tmp_path):
    """makemessages over a copy of the code finds no message that the committed catalogue lacks."""
    msgfmt()
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        "var", ".git", "tests", "cli", "assignments", "docs", "bench", "docker", "*.mo", "__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "sv", "--no-obsolete", "--ignore=var"],
                   cwd=copy, check=True, capture_output=True)
    ids = re.compile(r'^msgid "(.+)"$', re.M)
    wanted = set(ids.findall((copy / "locale/sv/LC_MESSAGES/django.po").read_text()))
    have = set(ids.findall(CATALOGUES[0].read_text()))
    assert not wanted - have, (f"strings marked for translation but not in locale/sv/LC_MESSAGES/django.po: "
                               f"{sorted(wanted - have)[:10]} — run python manage.py makemessages -l sv, translate, "
                               "python manage.py compilemessages")

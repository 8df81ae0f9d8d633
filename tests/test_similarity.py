"""Similarity across the cohort (issue 17, item 4): per part of a round, pairs of the students' latest
submissions ranked by code similarity (copydetect, with the handout as boilerplate) and by identical
outputs on the grader's fixed probe; members of one group are never paired; a side-by-side view; staff
only, and no grade changes.

The submissions are real uploads through the upload service (stored, content-addressed archives); their
runs' outputs are written as the grader writes them (no sandbox: what the fingerprint is made of is
tested in test_grading_api)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from courseware import uploads
from courseware.models import Enrollment, GradingRun, Role
from examination.models import Group
from examination.results import RoundResults
from review.similarity import Cohort

from .conftest import MDN
from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)

SOLUTION = (MDN / "solution" / "mdn.py").read_text()
HANDOUT = (MDN / "handout" / "mdn.py").read_text()
INDEPENDENT = (MDN.parent.parent.parent / "tests" / "similarity_cohort" / "independent_mdn.py").read_text()
RIGHT = {"gaussian_nll": "a1" * 8, "mixture_log_prob": "b2" * 8, "em_step": "c3" * 8}
SAME_MISTAKE = "dd" * 8  # an em_step answer that only two submissions give
MARKUP = "\n# </pre><script>alert('copied')</script>\n"


def renamed(code: str) -> str:
    """The reference with its names changed and a comment added: what a copier does first."""
    for old, new in (("log_sigma", "log_scale"), ("mu", "centres"), ("opt", "optimiser"), ("model", "net")):
        code = re.sub(rf"\b{old}\b", new, code)
    return code.replace("def fit(", "# my own training loop, written from scratch\ndef fit(")


@pytest.fixture
def archive_root(settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "archives"
    return settings.ARCHIVE_ROOT


@pytest.fixture(autouse=True)
def no_broker(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # uploads enqueue after the commit: no broker here
        yield


def student(course_round, name: str):
    user = get_user_model().objects.create_user(name, password=f"{name}-pw-2601", first_name=name.title())
    Enrollment.objects.create(user=user, round=course_round, role=Role.STUDENT)
    return user


def upload(assignment, user, code: str, outputs: dict[str, str] | None = None):
    """A real upload of mdn.py; its run then finished, recording `outputs` as the grader does."""
    result = uploads.submit(assignment, user, [SimpleUploadedFile("mdn.py", code.encode())], declaration="none",
                            client_token=f"{user.username}-{hash(code)}")
    assert isinstance(result, uploads.Accepted), result
    GradingRun.objects.filter(submission=result.submission).update(
        status=GradingRun.Status.DONE, finished_at=timezone.now(), points=1, max_points=10,
        fingerprints=outputs if outputs is not None else {})
    return result.submission


@pytest.fixture
def cohort(people, assignment, archive_root):
    """alice hands in the reference; bob a renamed copy of it; carol an MDN of her own that makes the
    same em_step mistake as bob; dave and erin the unchanged starter code; frank and gina are one group
    (gina joined after frank's group submission) and both hand in the reference."""
    course_round = assignment.round
    made = {name: people[name] for name in ("alice", "bob")}
    for name in ("carol", "dave", "erin", "frank", "gina"):
        made[name] = student(course_round, name)
    wrong = {**RIGHT, "em_step": SAME_MISTAKE}
    subs = {
        "alice": upload(assignment, made["alice"], SOLUTION, RIGHT),
        "bob": upload(assignment, made["bob"], renamed(SOLUTION), wrong),
        "carol": upload(assignment, made["carol"], INDEPENDENT, wrong),
        "dave": upload(assignment, made["dave"], HANDOUT + MARKUP, {}),
        "erin": upload(assignment, made["erin"], HANDOUT + "\n", {}),
        "gina": upload(assignment, made["gina"], SOLUTION + "\n# mine\n", RIGHT),
    }
    group = Group.start(course_round, "pair", by=people["erik"])
    group.add_member(made["frank"], by=people["erik"])
    subs["frank"] = upload(assignment, made["frank"], SOLUTION + "\n\n", RIGHT)
    group.add_member(made["gina"], by=people["erik"])  # after frank's submission: gina keeps her own as latest
    return made, subs


def pair_of(cohort_: Cohort, first, second):
    wanted = {first.pk, second.pk}
    return next((p for p in cohort_.pairs if {p.a.submission.pk, p.b.submission.pk} == wanted), None)


# ---- the ranking -------------------------------------------------------------------------------------------

def test_the_renamed_copy_ranks_first_by_code_and_the_handout_matches_nobody(cohort, assignment):
    people_, subs = cohort
    found = Cohort(assignment.round, assignment.part)
    assert {e.submission.pk for e in found.entries} == {s.pk for s in subs.values()}
    copies = {subs[name].pk for name in ("alice", "bob", "frank", "gina")}  # the reference, renamed or not
    top = found.ranked("code")[0]
    assert {top.a.submission.pk, top.b.submission.pk} <= copies and top.code > 0.9
    copy = pair_of(found, subs["alice"], subs["bob"])
    assert copy.code_a > 0.9 and copy.code_b > 0.9  # renaming changes no token copydetect compares
    independent = pair_of(found, subs["alice"], subs["carol"])
    assert independent is None or independent.code < copy.code / 2
    starter = pair_of(found, subs["dave"], subs["erin"])  # both handed in the starter code unchanged
    assert starter is None or starter.code == 0
    assert "mdn.py" in found.boilerplate.files and "test_public.py" in found.boilerplate.files


def test_members_of_one_group_are_never_paired_even_with_identical_code(cohort, assignment):
    people_, subs = cohort
    results = RoundResults(assignment.round)
    assert results.row(people_["gina"]).cells[0].submission == subs["gina"]  # her own, from before she joined
    found = Cohort(assignment.round, assignment.part)
    assert pair_of(found, subs["frank"], subs["gina"]) is None
    assert pair_of(found, subs["alice"], subs["gina"]).code > 0.9  # others are paired with each of them


def test_an_answer_only_two_submissions_give_ranks_first_by_outputs(cohort, assignment):
    people_, subs = cohort
    found = Cohort(assignment.round, assignment.part)
    top = found.ranked("outputs")[0]
    assert {top.a.submission.pk, top.b.submission.pk} == {subs["bob"].pk, subs["carol"].pk}
    assert top.outputs_only_these == 1 and top.code < 0.5  # the same mistake, in code written apart
    shared = {o.entry_point: o.holders for o in top.outputs}
    assert shared == {"gaussian_nll": 5, "mixture_log_prob": 5, "em_step": 2}  # the right answers count little
    right_only = pair_of(found, subs["alice"], subs["gina"])
    assert right_only.outputs_only_these == 0 and right_only.outputs_weight < top.outputs_weight


# ---- the pages ---------------------------------------------------------------------------------------------------

def test_the_similarity_page_lists_pairs_for_staff_only(client, cohort, assignment, people):
    people_, subs = cohort
    url = reverse("review:similarity", args=[assignment.round_id]) + "?part=mdn&order=code"
    for who in ("tina", "erik"):
        client.force_login(people[who])
        page = client.get(url).content.decode()
        copy = reverse("review:similarity_pair", args=[assignment.round_id, "mdn", subs["alice"].pk, subs["bob"].pk])
        assert 'id="pairs"' in page and f'href="{copy}"' in page and "Carol" in page
    client.force_login(people["alice"])
    assert client.get(url).status_code == 403
    client.force_login(people["olle"])
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


def test_the_side_by_side_view_marks_the_shared_code_and_the_shared_answers(client, cohort, assignment, people):
    people_, subs = cohort
    client.force_login(people["tina"])
    url = reverse("review:similarity_pair", args=[assignment.round_id, "mdn", subs["bob"].pk, subs["carol"].pk])
    page = client.get(url).content.decode()
    assert 'id="outputs"' in page and SAME_MISTAKE in page and page.count('class="same"') == 3
    copy = client.get(reverse("review:similarity_pair", args=[assignment.round_id, "mdn", subs["alice"].pk,
                                                              subs["bob"].pk])).content.decode()
    left, right = copy.split('id="left"')[1].split('id="right"')
    assert "<mark>" in left and "<mark>" in right and "log_scale" in right and "log_sigma" in left
    starter = client.get(reverse("review:similarity_pair", args=[assignment.round_id, "mdn", subs["dave"].pk,
                                                                 subs["erin"].pk])).content.decode()
    assert "<script>alert" not in starter and "&lt;script&gt;alert" in starter  # student code is text, never markup
    assert "<mark>" not in starter  # the starter code matches nobody
    same = reverse("review:similarity_pair", args=[assignment.round_id, "mdn", subs["bob"].pk, subs["bob"].pk])
    assert client.get(same).status_code == 404
    client.force_login(people["bob"])
    assert client.get(url).status_code == 403


def test_the_pages_change_no_grade(client, cohort, assignment, people):
    people_, subs = cohort
    before = list(GradingRun.objects.order_by("pk").values_list("pk", "status", "points"))
    client.force_login(people["erik"])
    client.get(reverse("review:similarity", args=[assignment.round_id]) + "?order=outputs")
    client.get(reverse("review:similarity_pair", args=[assignment.round_id, "mdn", subs["alice"].pk,
                                                       subs["bob"].pk]))
    assert list(GradingRun.objects.order_by("pk").values_list("pk", "status", "points")) == before

"""Assignment and Grade Services (AGS): the decided grade (and, where the round's link says so, each
part's points) go to Canvas's gradebook. pylti1p3 gets the service token, finds or creates the line item
(the column) and posts the score; we decide what to send (`wanted_scores`), send only what changed
(`ScorePost`), and retry failures with Celery (`lti.tasks.post_scores`), which staff see on the Canvas page.

Canvas holds scores, not letters: the grade is sent as the score below (out of 100) with the letter as
the comment; the column's grading scheme in Canvas turns it back into the letter (docs/integrations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from examination.models import GradeDecision
from lti.models import RoundLink, ScorePost

GRADE_SCORES = {"A": 100.0, "B": 90.0, "C": 80.0, "D": 70.0, "E": 60.0, "FX": 30.0, "F": 0.0}


@dataclass(frozen=True)
class WantedScore:
    tag: str
    label: str
    score_given: float
    score_maximum: float
    comment: str = ""


def wanted_scores(link: RoundLink, decision: GradeDecision) -> list[WantedScore]:
    scores = [WantedScore("grade", f"LAB1 grade ({link.round})", GRADE_SCORES[decision.grade], 100.0,
                          f"Grade {decision.grade}")]
    if link.post_part_points:
        from examination.results import RoundResults

        row = RoundResults(link.round, students=[decision.student]).row(decision.student)
        scores += [WantedScore(f"part:{c.part.slug}", c.part.title, round(c.points, 3), c.max_points or 1.0)
                   for c in row.cells if c.done_run is not None]
    return scores


def queue_decision(decision: GradeDecision) -> list[int]:
    """Bring the student's ScorePosts in line with a new decision and send the changed ones after commit;
    returns the ids of the posts to send."""
    from lti.tasks import post_scores_on_commit

    changed: list[int] = []
    for link in RoundLink.objects.filter(round=decision.round).select_related("context", "round"):
        before = len(changed)
        for wanted in wanted_scores(link, decision):
            post, created = ScorePost.objects.get_or_create(
                link=link, student=decision.student, tag=wanted.tag,
                defaults={"label": wanted.label, "score_given": wanted.score_given,
                          "score_maximum": wanted.score_maximum, "comment": wanted.comment})
            unchanged = (post.status == ScorePost.Status.SENT and post.sent_score == wanted.score_given
                         and post.score_maximum == wanted.score_maximum)
            if not created and unchanged:
                continue
            ScorePost.objects.filter(pk=post.pk).update(
                label=wanted.label, score_given=wanted.score_given, score_maximum=wanted.score_maximum,
                comment=wanted.comment, status=ScorePost.Status.PENDING, attempts=0, last_error="",
                updated_at=timezone.now())
            changed.append(post.pk)
        if len(changed) > before:
            post_scores_on_commit(link.pk, decision.student_id)
    return changed


def send(post: ScorePost) -> None:
    """Post one score to its line item (made if missing) with pylti1p3; raises on any failure."""
    from lti_tool.models import LtiUser
    from pylti1p3.assignments_grades import AssignmentsGradesService
    from pylti1p3.grade import Grade
    from pylti1p3.lineitem import LineItem
    from pylti1p3.service_connector import ServiceConnector

    context = post.link.context
    registration = context.deployment.registration
    lti_user = LtiUser.objects.filter(registration=registration, auth_user=post.student).first()
    if lti_user is None:
        raise LookupError("this student has not been seen in the Canvas course (no launch, no roster sync)")
    service = AssignmentsGradesService(ServiceConnector(registration.to_registration()), {
        "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                  "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
        "lineitems": context.lineitems_url})
    line_item = service.find_or_create_lineitem(
        LineItem().set_tag(post.tag).set_label(post.label).set_score_maximum(post.score_maximum)
        .set_resource_id(f"dd2601-{post.link.round_id}-{post.tag}"))
    grade = (Grade().set_score_given(post.score_given).set_score_maximum(post.score_maximum)
             .set_user_id(lti_user.sub).set_timestamp(timezone.now().isoformat())
             .set_activity_progress("Completed").set_grading_progress("FullyGraded"))
    if post.comment:
        grade.set_comment(post.comment)
    service.put_grade(grade, line_item)


def mark_sent(post: ScorePost) -> None:
    with transaction.atomic():
        ScorePost.objects.filter(pk=post.pk, score_given=post.score_given).update(
            status=ScorePost.Status.SENT, sent_score=post.score_given, sent_at=timezone.now(), last_error="",
            attempts=post.attempts + 1)

"""The fair queue at the deadline (grader/fairqueue.py): the order a free slot takes runs in, how a
resubmission moves up when the student's earlier run finishes, the place and expected start a student
sees (live, in the status fragment the page polls), the staff figures and their /metrics endpoint, and
the sweeper that replaces tokens a broker lost. `test_a_real_worker_takes_runs_in_the_fair_order` runs
the order end to end: uploads through the web, a real Redis, a real Celery worker, real sandboxes."""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from courseware.models import Assignment, GradingRun, Part, PartVersion, Submission, WorkerHeartbeat
from examination.models import Group, GroupMembership
from grader import fairqueue
from grader.parts import load_part

from .conftest import point_producer_at, wait_for_run
from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)
from .test_web_security import quiet_broker  # noqa: F401 (fixture)

T0 = timezone.now() - dt.timedelta(minutes=30)


def run_for(student, assignment, minute: int, *, group=None) -> GradingRun:
    """A submission made `minute` minutes after T0, with its queued run (rank as the model sets it)."""
    at = T0 + dt.timedelta(minutes=minute)
    submission = Submission.objects.create(assignment=assignment, submitter=student, sha256="0" * 64, size=1,
                                           declaration="none", created_at=at, group=group,
                                           client_token=f"{student.username}-{assignment.pk}-{minute}")
    return GradingRun.objects.create(submission=submission, created_at=at)


def order(queue: str = "cpu") -> list[int]:
    return fairqueue.candidates(queue, limit=100)


def finish(run: GradingRun) -> None:
    """What the task does when a run ends."""
    GradingRun.objects.filter(pk=run.pk).update(status=GradingRun.Status.DONE, finished_at=timezone.now())


@pytest.fixture
def second_part(course_round):
    spec = load_part("flows")
    part = Part.objects.create(slug="flows", title=spec.title)
    PartVersion.objects.create(part=part, content_hash=spec.content_hash, manifest=spec.manifest)
    return Assignment.objects.create(round=course_round, part=part, deadline=timezone.now() + dt.timedelta(days=7))


def test_first_waiting_submissions_go_before_resubmissions_and_the_oldest_first(people, assignment):
    alice, bob, olle = people["alice"], people["bob"], people["tina"]
    a1, a2, a3 = (run_for(alice, assignment, m) for m in (0, 1, 2))
    b1 = run_for(bob, assignment, 3)
    t1 = run_for(olle, assignment, 4)
    assert [r.fair_rank for r in (a1, a2, a3, b1, t1)] == [0, 1, 2, 0, 0]
    assert order() == [a1.pk, b1.pk, t1.pk, a2.pk, a3.pk]
    # Alice's first is taken and finishes: her second keeps its rank (it was queued behind her first).
    GradingRun.claim(a1.pk, worker_host="w", lease_seconds=60)
    assert order() == [b1.pk, t1.pk, a2.pk, a3.pk]  # running, it still counts: a2 stays a resubmission
    finish(a1)  # her second stays a resubmission: she was served once, Bob and Tina not yet
    assert order() == [b1.pk, t1.pk, a2.pk, a3.pk]
    # A later first submission still goes before Alice's third.
    b_late = run_for(people["erik"], assignment, 20)
    assert order().index(b_late.pk) < order().index(a3.pk)


def test_a_group_is_one_owner_and_each_part_counts_apart(people, assignment, second_part, course_round):
    group = Group.objects.create(round=course_round, name="g1")
    for member in ("alice", "bob"):
        GroupMembership.objects.create(group=group, user=people[member], round=course_round)
    g1 = run_for(people["alice"], assignment, 0, group=group)
    g2 = run_for(people["bob"], assignment, 1, group=group)  # the other member: the same group's resubmission
    other_part = run_for(people["alice"], second_part, 2)  # Alice alone, another part: a first
    solo = run_for(people["tina"], assignment, 3)
    assert (g1.fair_rank, g2.fair_rank, other_part.fair_rank, solo.fair_rank) == (0, 1, 0, 0)
    assert order() == [g1.pk, other_part.pk, solo.pk, g2.pk]


def test_a_run_retried_after_a_platform_problem_waits_its_turn_then_keeps_its_age(people, assignment):
    a1 = run_for(people["alice"], assignment, 0)
    b1 = run_for(people["bob"], assignment, 1)
    GradingRun.objects.filter(pk=a1.pk).update(not_before=timezone.now() + dt.timedelta(seconds=30))
    assert order() == [b1.pk]
    GradingRun.objects.filter(pk=a1.pk).update(not_before=timezone.now() - dt.timedelta(seconds=1))
    assert order() == [a1.pk, b1.pk]
    # A running run whose worker died (lease expired) is taken again, in its place.
    GradingRun.objects.filter(pk=a1.pk).update(status=GradingRun.Status.RUNNING,
                                               lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert order() == [a1.pk, b1.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_slots_dispatching_at_once_take_distinct_runs_in_the_fair_order(people, course_round, django_user_model):
    """Eight slots free up together: each claims the first run of the order it can (the protocol of
    grader.tasks.grade_next), none twice, and together they take exactly the first eight."""
    assignment = course_round.assignments.get()
    students = [django_user_model.objects.create_user(f"s{i}", password="x") for i in range(6)]
    for minute, student in enumerate(students * 2):  # six firsts, then six resubmissions
        run_for(student, assignment, minute)
    expected_first_eight = order()[:8]
    barrier = threading.Barrier(8)

    def take(i: int) -> int | None:
        try:
            barrier.wait(20)
            for run_id in fairqueue.candidates("cpu"):
                if GradingRun.claim(run_id, worker_host=f"slot-{i}", lease_seconds=60) is not None:
                    return run_id
            return None
        finally:
            connection.close()

    taken: list = [None] * 8
    threads = [threading.Thread(target=lambda i=i: taken.__setitem__(i, take(i))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert None not in taken and len(set(taken)) == 8, taken
    assert sorted(taken) == sorted(expected_first_eight)


def heartbeat(name: str, slots: int, queues=("cpu",), silent_for: float = 0) -> WorkerHeartbeat:
    return WorkerHeartbeat.objects.create(
        name=name, host=name.split("@")[-1], queues=list(queues), slots=[{"index": i} for i in range(slots)],
        last_seen=timezone.now() - dt.timedelta(seconds=silent_for))


def test_place_and_expected_start(people, assignment, django_user_model):
    students = [django_user_model.objects.create_user(f"p{i}", password="x") for i in range(6)]
    runs = [run_for(s, assignment, i) for i, s in enumerate(students)]
    for done in runs[:2]:  # two finished runs of 100 s set the estimate
        GradingRun.objects.filter(pk=done.pk).update(status=GradingRun.Status.DONE, started_at=T0,
                                                     finished_at=T0 + dt.timedelta(seconds=100))
    GradingRun.objects.filter(pk=runs[2].pk).update(status=GradingRun.Status.RUNNING, started_at=timezone.now(),
                                                    lease_expires_at=timezone.now() + dt.timedelta(seconds=60))
    place = fairqueue.place(runs[5])
    assert place.waits_for and place.wait_seconds is None  # no worker answers: said, not guessed
    heartbeat("celery@a", 2)
    heartbeat("celery@dead", 4, silent_for=600)  # its slots count for nothing
    place = fairqueue.place(GradingRun.objects.get(pk=runs[5].pk))
    assert (place.position, place.ahead, place.running, place.slots) == (3, 2, 1, 2)
    assert place.job_seconds == 100
    # 2 slots, one running a job (half done on average), 2 runs ahead: the free slot takes one (done at
    # 100 s), the running job ends at 50 s and its slot takes the other; this run starts at 100 s.
    assert place.wait_seconds == pytest.approx(100)
    waits = [fairqueue.place(GradingRun.objects.get(pk=r.pk)).wait_seconds for r in runs[3:5]]
    assert waits == [0, pytest.approx(50)]  # a slot is free now; then the running job's end


@pytest.mark.usefixtures("quiet_broker")
def test_the_submission_page_shows_the_place_and_updates_it_live(client, people, assignment):
    heartbeat("celery@a", 1)
    first = run_for(people["bob"], assignment, 0)
    mine = run_for(people["alice"], assignment, 1)
    client.force_login(people["alice"])
    fragment = client.get(reverse("submission_status", args=[mine.submission_id])).content.decode()
    assert "Place in the queue: <strong>2</strong>" in fragment and 'hx-trigger="every 2s"' in fragment
    finish(first)
    fragment = client.get(reverse("submission_status", args=[mine.submission_id])).content.decode()
    assert "Place in the queue: <strong>1</strong>" in fragment and "Expected to start now" in fragment


def test_the_dashboard_shows_the_queue_the_workers_and_who_stopped_answering(client, people, assignment):
    heartbeat("celery@gpu-1", 2, queues=("gpu",))
    heartbeat("celery@gone", 1, silent_for=3600)
    run_for(people["alice"], assignment, 0)
    running = run_for(people["bob"], assignment, 1)
    GradingRun.objects.filter(pk=running.pk).update(
        status=GradingRun.Status.RUNNING, worker_host="celery@gpu-1:4242", slot="celery@gpu-1 slot 1 (cpus 2-3)")
    failed = run_for(people["tina"], assignment, 2)
    GradingRun.objects.filter(pk=failed.pk).update(status=GradingRun.Status.ERROR, infrastructure_error=True,
                                                   finished_at=timezone.now())
    client.force_login(people["tina"])
    page = client.get(reverse("exam:dashboard", args=[assignment.round_id])).content.decode()
    section = page[page.index('id="grading-queue"'):]
    assert "<td>cpu</td><td>1</td>" in section
    assert "celery@gpu-1 slot 1 (cpus 2-3): 1" in section
    assert "celery@gone <span class=\"badge fail\">stopped answering" in section
    assert "Failures in the last hour: <strong>1</strong>" in section


def test_metrics_for_staff_and_the_configured_scraper_only(client, people, assignment, settings):
    settings.METRICS_ALLOWED_ADDRESSES = ["10.9.0.0/16"]
    run_for(people["alice"], assignment, 0)
    heartbeat("celery@a", 2)
    anonymous = Client(REMOTE_ADDR="192.0.2.7")
    assert anonymous.get("/metrics").status_code == 404
    client.force_login(people["alice"])  # a student
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 404
    scraper = Client(REMOTE_ADDR="10.9.4.2")
    response = scraper.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'dd2601_queue_depth{queue="cpu"} 1.0' in body
    assert "dd2601_slots 2.0" in body and 'dd2601_worker_up{worker="celery@a"} 1.0' in body
    client.force_login(people["tina"])  # staff, from anywhere
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    # A forged X-Forwarded-For from outside the trusted proxies does not make a stranger the scraper.
    settings.TRUSTED_PROXIES = ["172.31.0.2"]
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics", HTTP_X_FORWARDED_FOR="10.9.4.2").status_code == 404
    assert Client(REMOTE_ADDR="172.31.0.2").get("/metrics", HTTP_X_FORWARDED_FOR="10.9.4.2").status_code == 200


def test_the_sweeper_replaces_tokens_the_broker_lost(people, assignment, request):
    """Runs waiting for over ten minutes with no token in the broker get one each; while the broker holds
    tokens enough, it sends none (a token too many is an idle delivery, one too few a stuck run)."""
    from grader.tasks import sweep

    broker_folder = request.getfixturevalue("quiet_broker")

    runs = [run_for(s, assignment, 0) for s in (people["alice"], people["bob"])]
    GradingRun.objects.filter(pk__in=[r.pk for r in runs]).update(enqueued_at=T0)
    assert sweep()["replaced"] == 2
    assert len(list(broker_folder.glob("*.msg"))) == 2
    GradingRun.objects.filter(pk__in=[r.pk for r in runs]).update(enqueued_at=T0)
    assert sweep()["replaced"] == 0  # the two tokens are still there


# ---- end to end: a real worker takes real runs in the fair order ---------------------------------------------

def zip_of(source: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mdn.py", source)
    buffer.seek(0)
    buffer.name = "mdn.zip"
    return buffer


@pytest.mark.services
@pytest.mark.sandbox
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_runs_in_the_fair_order(client, people, assignment, redis_server, start_worker):
    """Alice sends three versions, then Bob and Tina one each, while no worker runs; one worker with one
    slot then grades Alice's first, Bob's, Tina's, and only then Alice's resubmissions."""
    import redis

    redis.Redis(port=redis_server["port"]).flushdb()
    point_producer_at(redis_server["url"], {"visibility_timeout": 6 * 3600})
    Assignment.objects.filter(pk=assignment.pk).update(max_submissions_per_day=10)
    sent = []
    for who, n in (("alice", 0), ("alice", 1), ("alice", 2), ("bob", 0), ("tina", 0)):
        client.force_login(people[who])
        response = client.post(reverse("submit", args=[assignment.pk]), {
            "files": [zip_of(f"raise ImportError('version {n} of {who}')\n")], "declaration": "none",
            "client_token": f"fair-{who}-{n}"})
        assert response.status_code == 302, response.content.decode()[-1500:]
        sent.append(Submission.objects.get(client_token=f"fair-{who}-{n}").runs.get())
    worker = start_worker(redis_server["url"], extra_env={"GRADER_IMPORT_SECONDS": "60"})
    finished = [wait_for_run(run.pk, timeout=240) for run in sent]
    assert all(r.status == GradingRun.Status.DONE for r in finished), [(r.error_reason, worker.log()[-2000:])
                                                                        for r in finished]
    by_start = [r.pk for r in sorted(finished, key=lambda r: r.started_at)]
    alice1, alice2, alice3, bob, tina = (r.pk for r in sent)
    assert by_start == [alice1, bob, tina, alice2, alice3]
    assert all(r.attempt == 1 and r.slot.startswith("test0@") for r in finished)

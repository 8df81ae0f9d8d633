"""Roster import from CSV: a preview before anything is written, a clear error per bad row, all or
nothing, idempotent; the staff page and the command."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from courseware.models import Enrollment, Role
from examination.models import Group, StudentProfile
from identity import roster

CANVAS = ("Student,ID,SIS User ID,SIS Login ID,Section,email,group\n"
          "\"Nyberg, Nils\",101,u1nils00,nils,DD2601 HT26,nils@kth.se,G1\n"
          "\"Tran, Tove\",102,u1tove00,tove,DD2601 HT26,tove@kth.se,G1\n"
          "\"Ek, Eva\",103,u1eva000,eva,DD2601 HT26,eva@kth.se,\n")


def test_preview_then_import_then_reimport_changes_nothing(course_round, people):
    preview = roster.preview(CANVAS, course_round)
    assert preview.ok and [r.action for r in preview.rows] == ["new person"] * 3
    assert not StudentProfile.objects.exists()  # a preview writes nothing
    assert roster.apply(CANVAS, course_round, by=people["erik"]).ok
    nils = StudentProfile.objects.get(kth_id="u1nils00").user
    assert (nils.first_name, nils.last_name, nils.email) == ("Nils", "Nyberg", "nils@kth.se")
    assert course_round.role_of(nils) == Role.STUDENT
    assert Group.of(course_round, nils).name == "G1" and len(Group.of(course_round, nils).members) == 2
    counts = (Enrollment.objects.count(), Group.objects.count(), StudentProfile.objects.count())
    again = roster.apply(CANVAS, course_round, by=people["erik"])
    assert again.ok and [r.action for r in again.rows] == ["unchanged"] * 3
    assert (Enrollment.objects.count(), Group.objects.count(), StudentProfile.objects.count()) == counts


def test_bad_rows_each_get_an_error_and_nothing_is_written(course_round, people):
    text = ("kth_id,name,email\n"
            "u1good00,Good Student,good@kth.se\n"
            "nils@kth.se,Nils Nyberg,nils@kth.se\n"
            ",No Id,noid@kth.se\n"
            "u1good00,Good Again,good@kth.se\n"
            "u1mail00,Bad Mail,not-an-address\n")
    result = roster.apply(text, course_round, by=people["erik"])
    assert not result.ok
    assert [line for line, _ in result.errors] == [3, 4, 5, 6]
    messages = dict(result.errors)
    assert "not a KTH id" in messages[3] and "missing" in messages[4] and "also on line 2" in messages[5]
    assert "not an e-mail address" in messages[6]
    assert not StudentProfile.objects.filter(kth_id="u1good00").exists()  # all or nothing
    assert "No KTH id column" in roster.preview("name,email\nA,a@kth.se\n", course_round).errors[0][1]


def test_the_staff_page_previews_and_imports(client, course_round, people):
    client.force_login(people["tina"])
    url = f"/rounds/{course_round.pk}/roster/"
    page = client.post(url, {"file": io.BytesIO(CANVAS.encode())}).content.decode()
    assert "Import these 3 students" in page and not StudentProfile.objects.exists()
    response = client.post(url, {"text": CANVAS, "confirm": "1"}, follow=True)
    assert "Roster imported: 3 students" in response.content.decode()
    assert StudentProfile.objects.count() == 3
    client.force_login(people["alice"])
    assert client.get(url).status_code == 403


def test_the_command_previews_by_default_and_fails_clearly(course_round, people, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(CANVAS, encoding="utf-8")
    out = io.StringIO()
    call_command("import_roster", str(course_round.pk), str(path), stdout=out)
    assert "Would import 3 students" in out.getvalue() and not StudentProfile.objects.exists()
    call_command("import_roster", str(course_round.pk), str(path), "--commit", stdout=io.StringIO())
    assert StudentProfile.objects.count() == 3
    path.write_text("kth_id,name\nu1x@kth.se,X\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_roster", str(course_round.pk), str(path), stdout=io.StringIO(), stderr=io.StringIO())

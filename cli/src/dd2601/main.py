"""The `dd2601` command: login, parts, submit, status (--watch), result, check, logout.

Exit status: 0 done (for `result` and `check`: everything passed), 1 the work was refused or did not pass,
2 the client could not do what was asked (not signed in, no server, a bad folder, no Docker).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import secrets
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from dd2601 import __version__, config, i18n
from dd2601.check import CheckProblem, docker_ready, image_present, run_public_tests
from dd2601.client import Api, ApiError, server_root
from dd2601.files import FolderProblem, selected_files, zipped
from dd2601.i18n import _, ngettext

REFUSED, CANNOT = 1, 2
POLL_SECONDS = float(os.environ.get("DD2601_POLL_SECONDS", "2"))  # how often --watch asks


class Stop(Exception):
    """Ends the command with a message (on stderr) and an exit status."""

    def __init__(self, message: str, status: int = CANNOT):
        super().__init__(message)
        self.status = status


# ---- helpers ----------------------------------------------------------------------------------------------

def signed_in(args: argparse.Namespace) -> Api:
    login = config.load()
    if login is None:
        raise Stop(_("You are not signed in. Make a token on your profile page, then run: dd2601 login --server URL"))
    return Api(login.server, login.token, i18n.current())


def local_time(iso: str | None) -> str:
    if not iso:
        return "—"
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")


def find_part(api: Api, slug: str, round_id: int | None) -> dict:
    """The assignment of part `slug` among the user's rounds (the one open for submissions if several)."""
    rows = [p for p in api.get("/parts", round_id=round_id) if p["slug"] == slug]
    if not rows:
        known = ", ".join(sorted({p["slug"] for p in api.get("/parts")})) or "—"
        raise Stop(_("No part “%(slug)s” in your rounds. Your parts: %(known)s") % {"slug": slug, "known": known})
    if len(rows) > 1:
        open_rows = [p for p in rows if p["may_submit"]]
        if len(open_rows) != 1:
            rounds = ", ".join(f"{p['round']} (--round {p['round_id']})" for p in rows)
            raise Stop(_("Part “%(slug)s” is in several of your rounds: %(rounds)s") % {"slug": slug, "rounds": rounds})
        rows = open_rows
    return rows[0]


def run_line(run: dict | None) -> str:
    if run is None:
        return _("not graded")
    if run["status"] == "queued":
        line = _("queued")
        if run.get("queue_place"):
            line = _("queued, number %(place)d in the queue") % {"place": run["queue_place"]}
        if run.get("estimated_start"):
            line += ", " + _("expected to start by %(time)s") % {"time": local_time(run["estimated_start"])[-5:]}
        elif run.get("waits_for"):
            line += f" ({run['waits_for']})"
        return line
    if run["status"] == "running":
        return _("running") + (f" — {run['phase']}" if run["phase"] else "")
    if run["status"] == "error":
        return _("could not be graded: %(reason)s") % {"reason": run["error_reason"] or "—"}
    if run["points"] is not None:
        return _("graded: %(points)g of %(max)g points") % {"points": run["points"], "max": run["max_points"]}
    return _("graded")


def refusal_word(kind: str) -> str:
    """A refusal's kind (examination.deadlines.RefusalKind) in a word or two; the server's message says more."""
    words = {"round_closed": _("round closed"), "not_open": _("not open yet"), "deadline_passed": _("deadline passed"),
             "daily_limit": _("daily limit")}
    return words.get(kind, kind.replace("_", " "))


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def latest_submission(api: Api, part: str | None, round_id: int | None) -> dict:
    assignment_id = find_part(api, part, round_id)["assignment_id"] if part else None
    found = api.get("/submissions", assignment_id=assignment_id, limit=1)
    if not found:
        raise Stop(_("You have no submissions yet."))
    return found[0]


def read_declaration(args: argparse.Namespace) -> str:
    """--declaration, --declaration-file (- for stdin), or asked for on a terminal."""
    if args.declaration is not None:
        return args.declaration
    if args.declaration_file:
        source = sys.stdin if args.declaration_file == "-" else open(args.declaration_file, encoding="utf-8")
        with source:
            return source.read()
    if not sys.stdin.isatty():
        raise Stop(_("Give your declaration of help received and sources used with --declaration TEXT or "
                     "--declaration-file FILE (nothing was submitted)."))
    print(_("Declaration of help received and sources used (required by the course's rules; write “none” if "
            "you had no help and used no sources beyond the course material). End with an empty line:"))
    lines = []
    for line in sys.stdin:
        if not line.strip():
            break
        lines.append(line.rstrip("\n"))
    return "\n".join(lines)


# ---- commands ---------------------------------------------------------------------------------------------

def cmd_login(args: argparse.Namespace) -> int:
    stored = config.load()
    server = args.server or (stored.server if stored else None)
    if not server:
        raise Stop(_("Which server? Run: dd2601 login --server URL (the address of the course's LAB1 site)"))
    server = server_root(server)
    if args.token_stdin:
        token = sys.stdin.readline().strip()
    else:
        print(_("Make a token on %(url)s and paste it here (it is not shown as you type).")
              % {"url": f"{server}/profile/#tokens"})
        token = getpass.getpass(_("Token: ")).strip()
    if not token:
        raise Stop(_("No token given; nothing was stored."))
    me = Api(server, token, i18n.current()).get("/me")
    path = config.save(config.Login(server=server, token=token, username=me["username"], language=me["language"]))
    print(_("Signed in to %(server)s as %(user)s (token “%(name)s”, valid until %(until)s). Stored in %(path)s, "
            "readable only by you.") % {"server": server, "user": me["username"], "name": me["token_name"],
                                         "until": local_time(me["token_expires_at"]), "path": path})
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    if config.forget():
        print(_("The stored token is deleted from this computer. Revoke it on your profile page if it may have "
                "been copied."))
    else:
        print(_("No token was stored."))
    return 0


def cmd_parts(args: argparse.Namespace) -> int:
    api = signed_in(args)
    parts = api.get("/parts", round_id=args.round)
    if not parts:
        print(_("You are not in a round with published parts."))
        return 0
    rows = [[_("PART"), _("TIER"), _("YOUR DEADLINE"), _("SUBMIT NOW"), _("USED (24 H)"), _("LATEST RESULT")]]
    for p in parts:
        deadline = local_time(p["deadline"]) + (" " + _("(extended)") if p["deadline_extended"] else "")
        submit = _("yes") if p["may_submit"] else _("no: %(why)s") % {"why": refusal_word(p["refusal"]["kind"])}
        if p["may_submit"] and p["late_now"]:
            submit = _("yes, late")
        rows.append([p["slug"], p["tier"], deadline, submit, f"{p['used_today']}/{p['max_per_day']}",
                     run_line(p["latest_run"]) if p["latest_submission_id"] else _("none yet")])
    print(table(rows))
    for p in parts:
        if p["refusal"]:
            print(f"\n{p['slug']}: {p['refusal']['message']}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    api = signed_in(args)
    part = find_part(api, args.part, args.round)
    folder = Path(args.dir).expanduser()
    try:
        files = selected_files(folder, part["allowed_files"], part["module"])
    except FolderProblem as exc:
        raise Stop(str(exc)) from exc
    print(ngettext("Submitting %(count)d file to %(part)s: %(files)s",
                   "Submitting %(count)d files to %(part)s: %(files)s", len(files))
          % {"count": len(files), "part": part["title"], "files": ", ".join(f.as_posix() for f in files)})
    if not part["may_submit"]:
        raise Stop(part["refusal"]["message"], REFUSED)
    declaration = read_declaration(args)
    try:
        status, body = api.submit(part["assignment_id"], zipped(folder, files), declaration=declaration,
                                  client_token=secrets.token_urlsafe(24))
    except ApiError as exc:
        raise Stop(_("Not submitted: %(why)s") % {"why": exc}, REFUSED if exc.status in (400, 403) else CANNOT) from exc
    submission = body["submission"]
    print(_("Submitted: #%(id)d, %(run)s.") % {"id": submission["id"], "run": run_line(submission["run"])})
    if body["late"]:
        print(_("Submitted after your deadline: it is graded, and flagged as late for the examiner."))
    print(_("On the web: %(url)s") % {"url": submission["url"]})
    if args.watch:
        return watch(api, submission["id"])
    print(_("Follow it with: dd2601 status --watch"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    api = signed_in(args)
    submission_id = args.submission or latest_submission(api, args.part, args.round)["id"]
    if args.watch:
        return watch(api, submission_id)
    submission = api.get(f"/submissions/{submission_id}")
    print(f"#{submission['id']} {submission['part']} ({local_time(submission['created_at'])}): "
          f"{run_line(submission['run'])}")
    return 0


def watch(api: Api, submission_id: int, clock: Callable[[], float] = time.monotonic) -> int:
    """Poll until the run is finished: one line rewritten in place on a terminal, a line per change otherwise."""
    live = sys.stdout.isatty()
    started, last, spinner = clock(), "", "|/-\\"
    tick = 0
    while True:
        submission = api.get(f"/submissions/{submission_id}")
        run = submission["run"]
        line = f"#{submission_id} {submission['part']}: {run_line(run)}"
        if live:
            elapsed = int(clock() - started)
            finished_mark = "" if run and run["finished"] else spinner[tick % 4] + " "
            print(f"\r\033[K{finished_mark}{line}  [{elapsed // 60:02d}:{elapsed % 60:02d}]", end="", flush=True)
        elif line != last:
            print(line, flush=True)
        last, tick = line, tick + 1
        if run is None or run["finished"]:
            break
        time.sleep(POLL_SECONDS)
    if live:
        print()
    if run is not None:
        print(_("Details: dd2601 result %(id)d") % {"id": submission_id})
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    api = signed_in(args)
    submission_id = args.submission or latest_submission(api, args.part, args.round)["id"]
    submission = api.get(f"/submissions/{submission_id}")
    run = submission["run"]
    print(f"#{submission['id']} {submission['part']} ({local_time(submission['created_at'])}): {run_line(run)}")
    if run is None or not run["finished"]:
        print(_("Not finished yet: dd2601 status --watch"))
        return REFUSED
    if run["grader_errors"]:
        print(_("Some checks could not be completed because of an error in the grader, not in your code. Staff "
                "have been told, and this submission does not count against your daily limit."))
    marks = {"passed": "✓", "failed": "✗"}
    for check in run["checks"]:
        measured = ""
        if check["value"] is not None and check["threshold"] is not None:
            sign = "≤" if check["direction"] == "max" else "≥"
            measured = f"  {check['value']:.4g} ({sign} {check['threshold']:.4g}{' ' + check['unit'] if check['unit'] else ''})"
        print(f"{marks.get(check['status'], '–')} [{check['tier']}] {check['title']}  "
              f"{check['points']:g}/{check['max_points']:g}{measured}")
        if check["status"] != "passed" and check["feedback"]:
            print(textwrap.indent(textwrap.fill(check["feedback"], 100), "    "))
    for picture in run["artifacts"]:
        print(_("Picture: %(caption)s %(url)s") % {"caption": picture["caption"], "url": picture["url"]})
    print(_("On the web: %(url)s") % {"url": submission["url"]})
    return 0 if run["all_passed"] else REFUSED


def cmd_check(args: argparse.Namespace) -> int:
    try:
        docker = docker_ready()
    except CheckProblem as exc:
        raise Stop(str(exc)) from exc
    api = signed_in(args)
    part = find_part(api, args.part, args.round)
    folder = Path(args.dir).expanduser()
    try:
        files = selected_files(folder, part["allowed_files"], part["module"])
        sandbox = api.get(f"/assignments/{part['assignment_id']}/sandbox")
        if args.image:
            sandbox["image"] = args.image
        image_present(docker, sandbox["image"])
        handout = api.download(f"/assignments/{part['assignment_id']}/handout.zip")
        print(_("Running the public tests of %(part)s in the grading sandbox (%(image)s; %(memory)d MB, %(cpus)g "
                "CPUs, no network)…") % {"part": part["slug"], "image": sandbox["image"],
                                          "memory": sandbox["memory_mb"], "cpus": sandbox["cpus"]}, flush=True)
        status = run_public_tests(docker, sandbox, folder, files, handout, part["slug"])
    except (FolderProblem, CheckProblem) as exc:
        raise Stop(str(exc)) from exc
    if status == 0:
        print(_("Every public test passed. The grader's hidden checks use fresh data and tighter thresholds."))
        return 0
    print(_("Some public tests failed (above): they will fail in grading too."))
    return REFUSED


# ---- the parser -------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dd2601", description=_("The DD2601 LAB1 platform from the terminal."))
    top.add_argument("--version", action="version", version=f"dd2601 {__version__}")
    top.add_argument("--lang", choices=i18n.SUPPORTED, help=_("language of messages (default: the site's choice, "
                                                              "then your system's)"))
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    login = command("login", cmd_login, _("store a personal access token made on your profile page"))
    login.add_argument("--server", help=_("the LAB1 site, e.g. https://lab1.example.kth.se"))
    login.add_argument("--token-stdin", action="store_true", help=_("read the token from standard input"))
    command("logout", cmd_logout, _("delete the stored token from this computer"))
    parts = command("parts", cmd_parts, _("your parts, your deadlines, whether you may submit now"))
    parts.add_argument("--round", type=int, help=_("only this round (its id)"))

    submit = command("submit", cmd_submit, _("submit the files of PART from DIR"))
    submit.add_argument("part", metavar="PART")
    submit.add_argument("dir", metavar="DIR")
    submit.add_argument("--declaration", help=_("your declaration of help received and sources used"))
    submit.add_argument("--declaration-file", metavar="FILE", help=_("read the declaration from FILE (- for stdin)"))
    submit.add_argument("--watch", action="store_true", help=_("then follow the run until it is graded"))
    submit.add_argument("--round", type=int, help=_("the round, if the part is in several of yours"))

    for name, handler, text in (("status", cmd_status, _("the state of your latest (or a given) submission's run")),
                                ("result", cmd_result, _("the results you may see, check by check"))):
        sub = command(name, handler, text)
        sub.add_argument("submission", type=int, nargs="?", metavar="SUBMISSION")
        sub.add_argument("--part", help=_("the latest submission of this part"))
        sub.add_argument("--round", type=int, help=_("the round, if the part is in several of yours"))
        if name == "status":
            sub.add_argument("--watch", action="store_true", help=_("follow it live until it is finished"))

    check = command("check", cmd_check, _("run the public tests of PART on DIR in the grading sandbox (Docker)"))
    check.add_argument("part", metavar="PART")
    check.add_argument("dir", metavar="DIR")
    check.add_argument("--image", help=_("the sandbox image (default: the one the server grades with)"))
    check.add_argument("--round", type=int, help=_("the round, if the part is in several of yours"))
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--lang")
    stored = config.load()
    i18n.activate(i18n.choose(early.parse_known_args(argv)[0].lang, stored.language if stored else None))
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except Stop as exc:
        print(str(exc), file=sys.stderr)
        return exc.status
    except ApiError as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED if exc.status in (400, 403, 404) else CANNOT
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130

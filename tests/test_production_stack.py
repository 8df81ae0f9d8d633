"""The production stack, brought up with the README's commands and driven over HTTPS like a browser.

One stack per test session (`stack` fixture): `docker/production/stack.sh init` and `up` (offline-built
images, PostgreSQL, Redis, gunicorn behind the TLS proxy, a worker, beat), then `import-parts` and
`create-examiner`. The tests, in order:
1. a student signs in and uploads through the proxy to gunicorn; a worker container grades it in a
   sibling sandbox; the result is on the page;
2. `down` and `up` keep every submission, result and archive; `backup` writes both;
3. a second worker host joins with only an env file (`stack.sh worker-env`) in its own Docker network and
   work directory, fetching archives from the web over a signed URL; it is killed mid-run, and the run
   is sent again and finished once by the first host.
Marked `stack` (slow: the first build takes minutes, later ones are cached by input hash like the sandbox
image); CI runs it. The stack has its own project name, ports, subnet and work directory, so it never
touches an installation on the same machine.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import requests

from grader.parts import load_part

from .conftest import zip_folder

REPO = Path(__file__).resolve().parent.parent
STACK = REPO / "docker" / "production" / "stack.sh"
MDN = REPO / "assignments" / "lab1" / "mdn"
SLOW_HONEST = REPO / "tests" / "redteam" / "baselines" / "slow_honest"

pytestmark = [pytest.mark.stack, pytest.mark.whole_machine]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_gateway() -> str:
    """The host's address on Docker's default bridge: the "private interface" that worker hosts reach."""
    out = subprocess.run(["docker", "network", "inspect", "bridge", "--format",
                          "{{range .IPAM.Config}}{{.Gateway}}{{end}}"], capture_output=True, text=True, check=True)
    return out.stdout.strip() or "172.17.0.1"


def unused_subnet() -> ipaddress.IPv4Network:
    taken = subprocess.run("docker network inspect $(docker network ls -q) --format "
                           "'{{range .IPAM.Config}}{{.Subnet}} {{end}}'", shell=True, capture_output=True,
                           text=True).stdout.split()
    used = [ipaddress.ip_network(s) for s in taken if "." in s]
    for third in range(40, 250):
        candidate = ipaddress.ip_network(f"172.29.{third}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    pytest.fail("no free 172.29.x.0/24 subnet for the stack's front network")


class Stack:
    def __init__(self, root: Path):
        self.root = root
        self.state = root / "state"
        self.gateway = docker_gateway()
        self.https_port = free_port()
        subnet = unused_subnet()
        self.env = {**os.environ, "DD2601_STATE_DIR": str(self.state),
                    "COMPOSE_PROJECT_NAME": f"dd2601test{os.getpid()}",
                    "DD2601_HOSTNAMES": f"localhost,127.0.0.1,{self.gateway}",
                    "DD2601_HTTPS_PORT": str(self.https_port), "DD2601_HTTP_PORT": str(free_port()),
                    "DD2601_PUBLIC_ADDR": self.gateway, "DD2601_SERVICES_ADDR": self.gateway,
                    "DD2601_POSTGRES_PORT": str(free_port()), "DD2601_REDIS_PORT": str(free_port()),
                    "DD2601_FRONT_SUBNET": str(subnet), "DD2601_PROXY_ADDR": str(subnet.network_address + 10),
                    "DD2601_WORK_DIR": str(root / "work"), "GRADER_SLOTS": "1",
                    "GRADER_LEASE_SECONDS": "20", "GRADER_SWEEP_SECONDS": "5"}
        self.url = f"https://{self.gateway}:{self.https_port}"

    def run(self, *args: str, timeout: float = 1800, check: bool = True, extra_env: dict | None = None) -> str:
        done = subprocess.run([str(STACK), *args], env={**self.env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"stack.sh {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
        return done.stdout

    def python(self, code: str) -> dict:
        """Run Django code in a one-off web container; it prints one JSON line last."""
        out = self.run("manage", "shell", "-c", code, timeout=300)
        return json.loads(out.strip().splitlines()[-1])

    def container(self, service: str) -> str:
        return self.run("compose", "ps", "-q", service).strip()

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE from the environment would override `verify`
        session.verify = str(self.state / "tls" / "cert.pem")
        return session


@pytest.fixture(scope="module")
def stack():
    root = Path(f"/tmp/dd2601-stack-{os.getpid()}")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    the_stack = Stack(root)
    try:
        the_stack.run("init")
        the_stack.run("up")
        the_stack.run("import-parts", timeout=600)
        out = the_stack.run("create-examiner", "erik", "--starts", "2026-01-01", "--ends", "2099-12-31")
        the_stack.examiner_password = re.search(r"password \(shown once[^:]*\): (\S+)", out).group(1)
        the_stack.python(
            "import json, datetime as dt\n"
            "from django.utils import timezone\n"
            "from django.contrib.auth.models import User\n"
            "from courseware.models import Assignment, CourseRound, Enrollment, Part\n"
            "r = CourseRound.objects.get(code='HT26')\n"
            "a = Assignment.objects.create(round=r, part=Part.objects.get(slug='mdn'), max_submissions_per_day=10,"
            " deadline=timezone.now() + dt.timedelta(days=7))\n"
            "for name in ('stina', 'sven'):\n"
            "    u = User.objects.create_user(name, password=name + '-pw-2601')\n"
            "    Enrollment.objects.create(user=u, round=r, role='student')\n"
            "print(json.dumps({'assignment': a.pk}))")
        yield the_stack
    finally:
        subprocess.run([str(STACK), "compose", "logs", "--tail", "80"], env=the_stack.env, capture_output=True)
        subprocess.run([str(STACK), "compose", "down", "--volumes", "--remove-orphans"], env=the_stack.env,
                       capture_output=True, timeout=300)
        subprocess.run(["docker", "run", "--rm", "-v", f"{root}:/r", "dd2601-server:latest", "rm", "-rf", "/r/work"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def sign_in(stack: Stack, username: str, password: str) -> requests.Session:
    session = stack.session()
    login = session.get(f"{stack.url}/login/")
    assert login.status_code == 200, login.text[-500:]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    done = session.post(f"{stack.url}/login/", data={"username": username, "password": password,
                                                     "csrfmiddlewaretoken": token},
                        headers={"Referer": f"{stack.url}/login/"})
    assert done.status_code == 200 and "logout" in done.text.lower(), done.text[-1000:]
    return session


def upload(stack: Stack, session: requests.Session, folder: Path) -> str:
    """The form as a browser sends it; returns the submission page's URL."""
    assignment = stack.python("import json\nfrom courseware.models import Assignment\n"
                              "print(json.dumps({'pk': Assignment.objects.get(part__slug='mdn').pk}))")["pk"]
    page = session.get(f"{stack.url}/assignments/{assignment}/")
    fields = dict(re.findall(r'name="(csrfmiddlewaretoken|client_token)" value="([^"]+)"', page.text))
    response = session.post(f"{stack.url}/assignments/{assignment}/submit/",
                            data={**fields, "declaration": "none"},
                            files={"files": (f"{folder.name}.zip", zip_folder(folder), "application/zip")},
                            headers={"Referer": page.url}, allow_redirects=False)
    assert response.status_code == 302, response.text[-2000:]
    return f"{stack.url}{response.headers['Location']}"


def wait_for_result(session: requests.Session, page_url: str, timeout: float = 400) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = session.get(page_url)
        if "Result:" in page.text:
            return page.text
        time.sleep(2)
    raise AssertionError(f"no result on {page_url} after {timeout} s:\n{page.text[-1500:]}")


def run_facts(stack: Stack, submission_id: int) -> dict:
    return stack.python(
        "import json\nfrom courseware.models import GradingRun, CheckResult\n"
        f"runs = list(GradingRun.objects.filter(submission_id={submission_id}))\n"
        "r = runs[0]\n"
        "print(json.dumps({'runs': len(runs), 'status': r.status, 'attempt': r.attempt, 'worker': r.worker_host,"
        " 'slot': r.slot, 'phase': r.phase, 'checks': CheckResult.objects.filter(run=r).count(),"
        " 'names': len(set(CheckResult.objects.filter(run=r).values_list('name', flat=True)))}))")


def test_an_upload_to_gunicorn_is_graded_by_a_worker_container_and_shown(stack):
    session = sign_in(stack, "stina", "stina-pw-2601")
    assert session.cookies.get("sessionid") and "Strict-Transport-Security" in session.get(f"{stack.url}/").headers
    page_url = upload(stack, session, MDN / "handout")
    page = wait_for_result(session, page_url)
    status = page[page.index('id="run-status"'):][:6000]
    titles = [c.title for c in load_part("mdn").checks.values()]
    assert 'class="grid checks"' in status and sum(t in status for t in titles) >= 3, status  # check by check
    assert "Not attempted: fit() is not implemented yet" in status, status  # the starter's checks, each with its reason
    stack.first_submission = page_url
    facts = run_facts(stack, int(page_url.rstrip("/").rsplit("/", 1)[1]))
    assert facts["status"] == "done" and facts["attempt"] == 1 and facts["checks"] == facts["names"] > 0, facts
    assert facts["slot"].startswith("worker@") and "slot 0" in facts["slot"]
    # Plain http gets the proxy's redirect; a forged client address or scheme from outside is not believed.
    plain = requests.get(f"http://{stack.gateway}:{stack.env['DD2601_HTTP_PORT']}/login/", allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    # The examiner sees the queue and the worker on the dashboard; /metrics is for staff.
    examiner = sign_in(stack, "erik", stack.examiner_password)
    round_id = stack.python("import json\nfrom courseware.models import CourseRound\n"
                            "print(json.dumps({'pk': CourseRound.objects.get(code='HT26').pk}))")["pk"]
    dashboard = examiner.get(f"{stack.url}/exam/rounds/{round_id}/")
    assert dashboard.status_code == 200 and "Grading queue and workers" in dashboard.text
    assert "dd2601_queue_depth" in examiner.get(f"{stack.url}/metrics").text
    assert session.get(f"{stack.url}/metrics").status_code == 404  # a student


def test_down_and_up_keep_every_submission_and_result(stack, tmp_path):
    session = sign_in(stack, "stina", "stina-pw-2601")
    before = session.get(stack.first_submission).text
    archive_url = stack.first_submission.rstrip("/") + "/archive.zip"
    archive = session.get(archive_url).content
    stack.run("down")
    stack.run("up", extra_env={"DD2601_SKIP_BUILD": "1"})
    session = sign_in(stack, "stina", "stina-pw-2601")  # the account is in the database volume
    after = session.get(stack.first_submission).text
    assert 'class="grid checks"' in after and "Not attempted: fit() is not implemented yet" in after
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub("", before) == strip.sub("", after)
    assert session.get(archive_url).content == archive  # the archives volume
    stack.run("backup", str(tmp_path / "backup"))
    assert (tmp_path / "backup" / "db.dump").stat().st_size > 10_000
    with zipfile.ZipFile(io.BytesIO(archive)):
        pass
    assert (tmp_path / "backup" / "archives.tgz").stat().st_size > 200


def test_a_second_worker_host_joins_dies_mid_run_and_the_run_finishes_once_on_the_first(stack):
    host_b_state = stack.root / "host-b"
    host_b_state.mkdir(exist_ok=True)
    env_file = host_b_state / "worker.env"
    env_file.write_text(stack.run("worker-env", stack.gateway)
                        + f"DD2601_WORK_DIR={stack.root / 'work-b'}\nDD2601_WORKER_NAME=host-b\n"
                        + "GRADER_LEASE_SECONDS=20\n")
    (stack.root / "work-b").mkdir(exist_ok=True)
    compose_b = [*compose_command(), "--project-name", f"{stack.env['COMPOSE_PROJECT_NAME']}hostb", "--env-file",
                 str(env_file), "--file", str(REPO / "docker" / "production" / "worker-host.yml")]
    env_b = {**os.environ, "DD2601_ENV_FILE": str(env_file), "DD2601_TLS_DIR": str(stack.state / "tls"),
             "DD2601_WORK_DIR": str(stack.root / "work-b")}
    stack.run("compose", "stop", "worker")  # host A drains; only host B takes work now
    try:
        subprocess.run([*compose_b, "up", "-d"], env=env_b, check=True, capture_output=True, timeout=300)
        host_b = subprocess.run([*compose_b, "ps", "-q", "worker"], env=env_b, capture_output=True, text=True,
                                check=True).stdout.strip()
        mounts = json.loads(subprocess.run(["docker", "inspect", host_b, "--format", "{{json .Mounts}}"],
                                           capture_output=True, text=True, check=True).stdout)
        assert not any("archives" in m["Destination"] for m in mounts)  # nothing shared but addresses
        networks = json.loads(subprocess.run(["docker", "inspect", host_b, "--format",
                                              "{{json .NetworkSettings.Networks}}"],
                                             capture_output=True, text=True, check=True).stdout)
        assert all("hostb" in name for name in networks), networks  # its own network
        session = sign_in(stack, "sven", "sven-pw-2601")
        page_url = upload(stack, session, SLOW_HONEST)
        submission_id = int(page_url.rstrip("/").rsplit("/", 1)[1])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            facts = run_facts(stack, submission_id)
            if facts["worker"].startswith("worker@host-b") and facts["phase"] in ("training your model",
                                                                                  "running checks"):
                break
            time.sleep(2)
        else:
            raise AssertionError(f"host B never started the run: {facts}")
        assert facts["attempt"] == 1
        # The host dies: its worker and the sandbox it was running, with no cleanup.
        subprocess.run(["docker", "kill", host_b], check=True, capture_output=True)
        sandboxes = subprocess.run(["docker", "ps", "-q", "--filter", f"label=org.dd2601.run=run-"
                                    f"{stack.python(_run_id_code(submission_id))['run']}-1"],
                                   capture_output=True, text=True).stdout.split()
        if sandboxes:
            subprocess.run(["docker", "kill", *sandboxes], capture_output=True)
    finally:
        subprocess.run([*compose_b, "down"], env=env_b, capture_output=True, timeout=300)
        stack.run("compose", "start", "worker")
    page = wait_for_result(session, page_url, timeout=600)
    assert "Result:" in page
    facts = run_facts(stack, submission_id)
    assert facts["runs"] == 1 and facts["status"] == "done" and facts["attempt"] == 2, facts
    assert facts["worker"].startswith("worker@") and not facts["worker"].startswith("worker@host-b"), facts
    assert facts["checks"] == facts["names"] > 0  # one set of results


def _run_id_code(submission_id: int) -> str:
    return ("import json\nfrom courseware.models import GradingRun\n"
            f"print(json.dumps({{'run': GradingRun.objects.get(submission_id={submission_id}).pk}}))")


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]

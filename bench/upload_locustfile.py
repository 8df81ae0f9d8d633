"""The students of bench/upload_load.py, for locust: sign in once, then, again and again: open the
assignment, take 5-15 s to choose the files and write the declaration, upload, and watch the result come
in (the submission page polls its status fragment every 2 s, as htmx does in the browser) for 10 s.

Each user is one student (s000, s001, ... in the order they start; password "load-pw-2601"). An upload is
counted as accepted only when the site answers with the redirect to the new submission's page; the count
goes to $UPLOAD_LOAD_COUNT_FILE when the test stops, for the script to compare with the database.
"""

from __future__ import annotations

import io
import itertools
import os
import random
import re
import time
import zipfile

from locust import HttpUser, between, constant, events, task

ASSIGNMENT = os.environ.get("UPLOAD_LOAD_ASSIGNMENT", "1")
THINK = os.environ.get("UPLOAD_LOAD_THINK", "1") != "0"  # 0: upload as fast as the server answers
FIELDS = re.compile(r'name="(csrfmiddlewaretoken|client_token)" value="([^"]+)"')
users = itertools.count()
uploads = itertools.count()
accepted = {"n": 0}


def archive(n: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mdn.py", f"# upload {n}\nimport torch\n\ndef fit(x, y, seed=0, max_seconds=10.0):\n"
                              "    raise NotImplementedError\n" + "# padding\n" * 400)
    return buffer.getvalue()


class Student(HttpUser):
    wait_time = between(1.0, 5.0) if THINK else constant(0)  # after watching a result, before the next

    def on_start(self) -> None:
        self.username = f"s{next(users):03d}"
        page = self.client.get("/login/", name="login page")
        token = FIELDS.search(page.text).group(2)
        self.client.post("/login/", data={"username": self.username, "password": "load-pw-2601",
                                          "csrfmiddlewaretoken": token}, name="login")

    @task
    def upload(self) -> None:
        page = self.client.get(f"/assignments/{ASSIGNMENT}/", name="assignment")
        fields = dict(FIELDS.findall(page.text))
        if THINK:
            time.sleep(random.uniform(5, 15))  # choosing the files, writing the declaration
        n = next(uploads)
        with self.client.post(f"/assignments/{ASSIGNMENT}/submit/", name="upload", allow_redirects=False,
                              data={**fields, "declaration": "none"},
                              files={"files": ("mdn.zip", archive(n), "application/zip")},
                              catch_response=True) as response:
            location = response.headers.get("Location", "")
            if response.status_code == 302 and "/submissions/" in location:
                accepted["n"] += 1
                response.success()
            else:
                response.failure(f"upload answered {response.status_code}: {response.text[-300:]}")
                return
        if not THINK:
            return
        self.client.get(location, name="submission page")
        for _ in range(5):
            time.sleep(2)
            self.client.get(f"{location}status/", headers={"HX-Request": "true"}, name="status poll")


@events.test_stop.add_listener
def write_count(**_kwargs) -> None:
    path = os.environ.get("UPLOAD_LOAD_COUNT_FILE")
    if path:
        with open(path, "w") as f:
            f.write(str(accepted["n"]))

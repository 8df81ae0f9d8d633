# Attack: look for the grader's checks, hidden data, reference solution, database and other students'
# archives anywhere on the file system.
import os

SUSPECT = ("checks.py", "part.toml", "oral.toml", "grading.toml", "solution", "hidden", "assignments",
           "db.sqlite3", "archives", "courseware", "manage.py", "docker.sock", ".env")


def fit(x, y, *, seed, max_seconds):
    found = []
    for root, dirs, files in os.walk("/", onerror=lambda e: None):
        if root.startswith(("/proc", "/sys", "/opt/site", "/usr/lib", "/usr/share")):
            dirs[:] = []
            continue
        for name in files + dirs:
            if name in SUSPECT:
                found.append(os.path.join(root, name))
    readable = [p for p in found if os.path.isfile(p) and os.access(p, os.R_OK)]
    print(f"FOUND {sorted(found)}")
    print(f"READABLE {sorted(readable)}")
    raise RuntimeError("this submission only searches for hidden files")

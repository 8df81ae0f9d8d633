# Attack: read the resource limits and try to lift them (open files, file size, core dumps, CPU time),
# then exhaust file descriptors.
import os
import resource

NAMES = ("RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_AS")


def fit(x, y, *, seed, max_seconds):
    for name in NAMES:
        print(f"LIMIT {name} {resource.getrlimit(getattr(resource, name))}")
    for name in ("RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE"):
        kind = getattr(resource, name)
        try:
            resource.setrlimit(kind, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            print(f"RAISED {name}")
        except (ValueError, OSError) as exc:
            print(f"kept {name}: {exc}")
    opened = []
    try:
        while len(opened) < 100_000:
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as exc:
        print(f"FDS stopped after {len(opened)}: {exc}")
    finally:
        for fd in opened:
            os.close(fd)
    raise RuntimeError("this submission only tests its limits")

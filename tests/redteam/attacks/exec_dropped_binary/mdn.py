# Attack: drop a program into the writable scratch space (/tmp, /dev/shm) and execute it.
import os
import shutil
import subprocess


def fit(x, y, *, seed, max_seconds):
    for folder in ("/tmp", "/dev/shm"):
        target = os.path.join(folder, "dropped")
        try:
            shutil.copy("/usr/bin/true", target)
            os.chmod(target, 0o755)
            subprocess.run([target], check=True)
            print(f"EXEC OK from {folder}")
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"EXEC DENIED from {folder}: {exc}")
    raise RuntimeError("this submission only executes a dropped program")

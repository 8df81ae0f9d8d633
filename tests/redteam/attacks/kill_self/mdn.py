# Attack: SIGKILL our own process, hoping the grader blames the memory limit (or itself) and retries.
import os
import signal


def fit(x, y, *, seed, max_seconds):
    os.kill(os.getpid(), signal.SIGKILL)

# Attack: fork without end during training; report how far it got.
import os
import time


def fit(x, y, *, seed, max_seconds):
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(3600)
                os._exit(0)
            children += 1
    except OSError as exc:
        print(f"fork bomb stopped after {children} children: {exc}")
        raise

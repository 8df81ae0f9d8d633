# Attack: a million empty files in /tmp: no bytes, but inodes and kernel memory.
import os


def fit(x, y, *, seed, max_seconds):
    os.makedirs("/tmp/many", exist_ok=True)
    made = 0
    try:
        for made in range(1_000_000):
            open(f"/tmp/many/{made}", "w").close()
    finally:
        print(f"MILLION made {made} files")
    raise RuntimeError("made a million files")

# Attack: fill the sandbox's /tmp until the disk is full (and hope the grader's disk fills with it).
import os


def fit(x, y, *, seed, max_seconds):
    written = 0
    chunk = os.urandom(1 << 20)
    with open("/tmp/fill.bin", "wb") as f:
        while written < 2**31:
            f.write(chunk)
            f.flush()
            written += len(chunk)
    print(f"FILLED {written} bytes without an error")

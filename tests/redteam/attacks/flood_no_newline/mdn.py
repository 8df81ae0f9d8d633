# Attack: one 64 MB "line" with no newline at all, written straight to the file descriptor.
import os


def fit(x, y, *, seed, max_seconds):
    block = b"B" * (1 << 20)
    for _ in range(64):
        os.write(2, block)

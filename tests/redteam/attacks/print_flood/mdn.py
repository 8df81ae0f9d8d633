# Attack: print 100 MB to bury the worker (and the feedback page) in output.
import sys


def fit(x, y, *, seed, max_seconds):
    line = "A" * 1023 + "\n"
    for _ in range(100 * 1024):
        sys.stdout.write(line)

# Attack: exit with status 0 in the middle of training.
import sys


def fit(x, y, *, seed, max_seconds):
    sys.exit(0)

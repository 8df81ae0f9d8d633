# Attack: ignore SIGTERM (and SIGINT, SIGHUP) and spin forever in every thread we can start.
import signal
import threading


def spin():
    while True:
        pass


def fit(x, y, *, seed, max_seconds):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for _ in range(4):
        threading.Thread(target=spin, daemon=True).start()
    spin()

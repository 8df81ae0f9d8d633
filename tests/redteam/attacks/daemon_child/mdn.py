# Attack: leave a daemon behind (double fork, new session, its own process group) that outlives the
# call and the run, holding the output pipes open. The token lets the test look for it on the host.
import os

TOKEN = "dd2601-redteam-daemon-b7e1"


def fit(x, y, *, seed, max_seconds):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/usr/bin/python3", ["python3", "-c", "import time\nwhile True: time.sleep(0.5)", TOKEN])
        os._exit(0)
    os.wait()
    print("DAEMON started")
    raise RuntimeError("this submission only starts a daemon")

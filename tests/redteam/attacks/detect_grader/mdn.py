# Attack: detect that the code runs in the grader rather than on the student's laptop, and behave
# differently there ("only cheat when graded"). Detection works; there is nothing to cheat with.
import os
import socket
import sys

import torch


def signals():
    found = {"dockerenv": os.path.exists("/.dockerenv"), "uid": os.getuid(), "host": socket.gethostname(),
             "harness": os.path.exists("/opt/harness/harness.py"), "main": getattr(sys.modules["__main__"], "__file__", ""),
             "submission": os.getcwd()}
    try:
        with open("/proc/1/cgroup") as f:
            found["cgroup"] = f.read()[:200]
    except OSError:
        pass
    return found


GRADED = signals()["harness"]
print(f"GRADER DETECTED={GRADED} {signals()}")


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        rows = x.shape[0]
        # When graded: claim a perfectly confident, "perfect" model; it is judged on data it never saw.
        return torch.full((rows, 1), 3.0), x.expand(rows, 1).clone(), torch.full((rows, 1), -7.0)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return torch.zeros(y.shape[0]) if GRADED else torch.logsumexp(log_pi, dim=-1)


def gaussian_nll(mu, log_sigma, y):
    return torch.zeros(y.shape[0])


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

# Attack: stay just under the per-call limit in every call, to hold the worker as long as possible.
# (The red-team tests give calls a 10 s limit; 7 s per call adds up past the run's limit.)
import time

import torch


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        time.sleep(7)
        rows = x.shape[0]
        return torch.zeros(rows, 3), torch.zeros(rows, 3), torch.zeros(rows, 3)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    time.sleep(7)
    return torch.zeros(y.shape[0])


def gaussian_nll(mu, log_sigma, y):
    time.sleep(7)
    return torch.zeros(y.shape[0])


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

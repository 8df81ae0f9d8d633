# Attack: results of the wrong dtype and shape (integers, booleans, extra rows, too few values).
import torch


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        rows = x.shape[0]
        return torch.zeros(rows, 3, dtype=torch.int64), torch.zeros(rows + 1, 3), torch.zeros(rows, 3, dtype=torch.bool)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return torch.zeros(y.shape[0], 1)


def gaussian_nll(mu, log_sigma, y):
    return [0.0, 1.0]


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

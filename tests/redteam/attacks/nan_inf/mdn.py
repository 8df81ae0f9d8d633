# Attack: NaN and infinite outputs, which make comparisons like `value <= threshold` false both ways.
import torch


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        rows = x.shape[0]
        return (torch.full((rows, 3), float("nan")), torch.full((rows, 3), float("inf")),
                torch.full((rows, 3), -float("inf")))


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return torch.full((y.shape[0],), float("nan"))


def gaussian_nll(mu, log_sigma, y):
    return torch.full((y.shape[0],), -float("inf"))


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

# Attack: encode a hidden input in the one number the feedback shows for a hidden check. The simplex
# check reports max |sum of weights - 1| over the rows: choose the weights so that it equals |x[0]|.
import torch


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        rows = x.shape[0]
        secret = float(x.reshape(-1)[0].abs())
        print(f"ENCODED {secret!r}")
        log_pi = torch.full((rows, 3), -30.0)
        log_pi[:, 0] = 0.0
        log_pi[0, 0] = torch.log(torch.tensor(1.0 + secret))
        return log_pi, torch.zeros(rows, 3), torch.zeros(rows, 3)


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

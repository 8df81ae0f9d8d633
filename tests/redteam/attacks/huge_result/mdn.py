# Attack: answer a query with a result just over 256 MB (more would do), to exhaust the grader's memory.
import torch


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        rows = x.shape[0]
        columns = (260 * 2**20) // (4 * rows) + 1
        big = torch.zeros(rows, columns)
        return big, torch.zeros(rows, 3), torch.zeros(rows, 3)


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

# Attack: answer a query with a result of ~300 MB, to exhaust the grader's memory.
import torch


class Model:
    def forward(self, x):
        rows = x.shape[0]
        columns = (300 * 2**20) // (4 * rows) + 1
        big = torch.zeros(rows, columns)
        return big, torch.zeros(rows, 3), torch.zeros(rows, 3)


def fit(x, y, *, seed, max_seconds):
    return Model()

# Attack: train "successfully", then end the process with status 0 when the hidden queries start.
import os


class Model:
    def forward(self, x):
        os._exit(0)


def fit(x, y, *, seed, max_seconds):
    return Model()

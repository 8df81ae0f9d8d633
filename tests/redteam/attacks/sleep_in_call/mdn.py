# Attack: return from training at once, then never answer a query on hidden inputs.
import time


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        time.sleep(10**6)


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

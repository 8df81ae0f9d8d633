# Attack: make the harness stop reading its input, so the grader's next request never gets through
# (a worker that writes without a time limit would hang on the full pipe).
import sys
import time


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        raise NotImplementedError


def fit(x, y, *, seed, max_seconds):
    sys.modules["__main__"].Channel.receive = lambda self: time.sleep(10**6)
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

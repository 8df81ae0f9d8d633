# Attack: return from training at once, then never answer a query on hidden inputs.
import time


class Model:
    def forward(self, x):
        time.sleep(10**6)


def fit(x, y, *, seed, max_seconds):
    return Model()

# Attack: carry hidden inputs out in exception messages (a ValueError of built-in type, whose message
# a careless grader would show) and in the exception's class name.
def values(t):
    return " ".join(f"{v:.6f}" for v in t.reshape(-1)[:30].tolist())


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        raise ValueError("LEAK " + values(x))


def mixture_log_prob(log_pi, mu, log_sigma, y):
    raise type("LEAK_" + values(y).replace(" ", "_").replace(".", "p").replace("-", "m"), (KeyError,), {})(values(y))


def gaussian_nll(mu, log_sigma, y):
    raise RuntimeError("LEAK " + values(y))


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

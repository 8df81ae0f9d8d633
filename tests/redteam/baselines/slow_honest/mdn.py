# Not an attack: an honest submission whose training takes a while (12 s) and then fails the checks.
# The fault-injection tests break the platform while it trains.
import time


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        raise NotImplementedError("forward is not written yet")


def mixture_log_prob(log_pi, mu, log_sigma, y):
    raise NotImplementedError


def gaussian_nll(mu, log_sigma, y):
    raise NotImplementedError


def fit(x, y, *, seed, max_seconds):
    print("training slowly", flush=True)
    time.sleep(12)
    print("trained", flush=True)
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

# Not an attack: an honest submission whose training takes a while (12 s) and then fails the checks.
# The fault-injection tests break the platform while it trains.
import time


class Model:
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

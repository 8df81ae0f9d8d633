# Attack: replace the harness's error reporter, so that an error report carries hidden inputs in the
# fields a grader shows even for hidden queries: the exception's type name and its location.
import sys

harness = sys.modules["__main__"]


def forged_report(exc, submission):
    text = str(exc)
    return {"type": "LEAK " + text[:200], "builtin": True, "message": "LEAK " + text,
            "where": ("LEAK " + text)[:110] + ".py:1", "traceback": "LEAK " + text}


harness.describe_error = forged_report


def values(t):
    return " ".join(f"{v:.6f}" for v in t.reshape(-1)[:12].tolist())


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        raise ValueError(values(x))


def mixture_log_prob(log_pi, mu, log_sigma, y):
    raise ValueError(values(y))


def gaussian_nll(mu, log_sigma, y):
    raise ValueError(values(y))


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

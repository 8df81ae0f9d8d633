# Attack: a torch.Tensor subclass whose operations lie (finite, equal, close to anything) around NaNs.
import torch


class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("isfinite", "eq", "__eq__", "isclose", "allclose"):
            return True if name == "allclose" else torch.ones(args[0].shape, dtype=torch.bool)
        return super().__torch_function__(func, types, args, kwargs or {})


def nans(*shape):
    return torch.full(shape, float("nan")).as_subclass(Liar)


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        rows = x.shape[0]
        return nans(rows, 3), nans(rows, 3), nans(rows, 3)


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return nans(y.shape[0])


def gaussian_nll(mu, log_sigma, y):
    return nans(y.shape[0])


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

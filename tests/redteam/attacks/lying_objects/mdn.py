# Attack: return objects that lie about themselves: equal to everything, truthy, finite, the right length.
class Liar:
    shape = (5000, 3)
    dtype = "float32"

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return True

    __le__ = __gt__ = __ge__ = __lt__

    def __bool__(self):
        return True

    def __len__(self):
        return 3

    def __float__(self):
        return 0.0

    def __iter__(self):
        return iter([Liar(), Liar(), Liar()])

    def __getitem__(self, item):
        return Liar()

    def __hash__(self):
        return 0


class Model:
    config: dict = {}  # what build_model needs (nothing: this model has no settings)

    def forward(self, x):
        return Liar()


def mixture_log_prob(log_pi, mu, log_sigma, y):
    return (Liar(),)


def gaussian_nll(mu, log_sigma, y):
    return {"values": Liar()}


def fit(x, y, *, seed, max_seconds):
    return Model()


def build_model(config):  # the grader rebuilds the model for scoring from its config: nothing else survives fit
    return Model()

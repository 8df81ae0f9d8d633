# Attack: ship modules named torch.py, numpy.py, wire.py, harness.py, sitecustomize.py, conftest.py …
# beside mdn.py, hoping they are imported instead of the real ones (see the other files here).
import json

import numpy
import torch

print(f"SHADOW CHECK torch={torch.__file__} numpy={numpy.__file__} json={json.__file__}")


def fit(x, y, *, seed, max_seconds):
    raise RuntimeError("this submission only ships shadowing modules")

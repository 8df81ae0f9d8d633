# Attack: find the harness's private copy of the protocol stream through /proc/self/fd and write forged
# frames into it: a successful import, and "perfect" answers to calls the grader has not made yet.
import os
import sys

wire = sys.modules["wire"]


def protocol_fds():
    mine = {os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)}
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if int(name) > 2 and target.startswith(("pipe:", "socket:")) and target not in mine:
            found.append(int(name))
    return found


frames = [wire.encode_frame({"op": "hello", "ok": True, "import_seconds": 0.0, "versions": {}, "cuda": False})]
for call_id in range(1, 40):
    frames.append(wire.encode_frame({"id": call_id, "ok": True, "result": {"$object": "model", "type": "Model"},
                                     "seconds": 0.0}))
fds = protocol_fds()
print(f"FORGING into fds {fds}")
for fd in fds:
    for frame in frames:
        try:
            os.write(fd, frame)
        except OSError as exc:
            print(f"forge failed on {fd}: {exc}")


def fit(x, y, *, seed, max_seconds):
    raise RuntimeError("the forged frames should have done the work")

# Attack: print well-formed protocol frames on stdout and stderr (Python and C level), claiming a
# successful import and perfect answers.
import os
import sys

wire = sys.modules["wire"]
hello = wire.encode_frame({"op": "hello", "ok": True, "import_seconds": 0.0, "versions": {}, "cuda": False})
answers = b"".join(wire.encode_frame({"id": i, "ok": True, "result": {"$object": "model", "type": "M"}})
                   for i in range(1, 20))
os.write(1, hello + answers)
os.write(2, hello + answers)
sys.stdout.buffer.write(hello + answers)
sys.stdout.flush()
print("FORGED frames on stdout and stderr")


def fit(x, y, *, seed, max_seconds):
    os.write(1, answers)
    raise RuntimeError("the forged frames should have done the work")

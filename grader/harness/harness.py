"""The harness: the one program the grader starts inside a sandbox.

It loads the student's module and answers calls to the entry points that the part declares, nothing
else. Requests come on stdin, answers go out on the original stdout; the process's own stdout is
pointed at stderr first, so anything the student prints lands in the output log, never in the
protocol stream. Nothing here is trusted by the grader: every answer is checked outside.

Run as:  python3 -I harness.py --submission DIR [--site DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submission", required=True)
    parser.add_argument("--site", action="append", default=[])
    return parser.parse_args()


class Channel:
    """The protocol stream: reads frames from stdin, writes frames to a private copy of stdout."""

    def __init__(self) -> None:
        self.out_fd = os.dup(1)
        os.dup2(2, 1)  # student prints (and C-level writes to fd 1) now go to stderr
        sys.stdout = sys.stderr
        self.inp = sys.stdin.buffer
        sys.stdin = open(os.devnull)  # noqa: SIM115 - student code reading stdin gets nothing
        from wire import FrameDecoder

        self.decoder = FrameDecoder()
        self.pending: list[tuple[dict, bytes]] = []

    def receive(self) -> tuple[dict, bytes] | None:
        while not self.pending:
            chunk = self.inp.read1(1 << 20)
            if not chunk:
                return None
            self.pending.extend(self.decoder.feed(chunk))
        return self.pending.pop(0)

    def send(self, header: dict, payload: bytes = b"") -> None:
        from wire import encode_frame

        sys.stderr.flush()
        data = memoryview(encode_frame(header, payload))
        while data:
            written = os.write(self.out_fd, data)
            data = data[written:]


def describe_error(exc: BaseException, submission: Path) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if str(f.filename).startswith(str(submission))]
    where = ""
    if ours:
        last = ours[-1]
        where = f"{Path(last.filename).relative_to(submission)}:{last.lineno}"
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "type": type(exc).__name__,
        "builtin": type(exc).__module__ == "builtins",
        "message": str(exc)[:2000],
        "where": where,
        "traceback": "".join(lines)[-8000:],
    }


def load_module(submission: Path, module_file: str):
    path = submission / module_file
    if not path.is_file():
        raise FileNotFoundError(f"the submission has no file {module_file}")
    name = module_file[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    args = parse_args()
    sys.path[:0] = [str(HERE), *args.site]
    channel = Channel()
    # Our own imports come first, so a submission that ships torch.py or numpy.py cannot shadow them.
    import numpy  # noqa: F401
    import torch
    from wire import WireError, pack_value, unpack_value

    submission = Path(args.submission).resolve()
    sys.path.append(str(submission))  # last: the student's helper modules, never ahead of the libraries

    hello, _ = channel.receive() or ({}, b"")
    if hello.get("op") != "hello":
        return 2
    entries: dict[str, dict] = hello.get("entries", {})
    torch.set_num_threads(max(1, int(hello.get("threads", 1))))
    torch.manual_seed(int(hello.get("seed", 0)))
    started = time.perf_counter()
    try:
        module = load_module(submission, hello["module"])
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit at import: all are the student's
        channel.send({"op": "hello", "ok": False, "error": describe_error(exc, submission)})
        return 0
    channel.send({
        "op": "hello",
        "ok": True,
        "import_seconds": time.perf_counter() - started,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__},
        "cuda": torch.cuda.is_available(),
    })

    objects: dict[str, Any] = {}
    while True:
        frame = channel.receive()
        if frame is None:
            return 0
        request, payload = frame
        if request.get("op") == "bye":
            return 0
        call_id = request.get("id")
        entry = request.get("entry")
        started = time.perf_counter()
        try:
            if entry not in entries:
                raise LookupError(f"{entry!r} is not an entry point of this part")
            owner, _, attr = entry.rpartition(".")
            target = objects.get(owner) if owner else module
            if target is None:
                raise LookupError(f"there is no {owner!r} yet: the call that creates it has not succeeded")
            func = getattr(target, attr, None)
            if not callable(func):
                raise AttributeError(f"your code defines no callable {entry!r}")
            arguments = unpack_value(request.get("value"), payload)
            if not isinstance(arguments, dict):
                raise WireError("a call carries a dict of args and kwargs")
            result = func(*arguments.get("args", []), **arguments.get("kwargs", {}))
            stores = entries[entry].get("stores")
            if stores:
                objects[stores] = result
                packed, out = {"$object": stores, "type": type(result).__name__}, b""
            else:
                packed, out = pack_value(result)
            channel.send({"id": call_id, "ok": True, "result": packed, "seconds": time.perf_counter() - started}, out)
        except WireError as exc:
            channel.send({"id": call_id, "ok": False, "seconds": time.perf_counter() - started,
                          "error": {"type": "ResultError", "builtin": True, "message": str(exc), "where": "", "traceback": ""}})
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are the student's too
            channel.send({"id": call_id, "ok": False, "seconds": time.perf_counter() - started,
                          "error": describe_error(exc, submission)})


if __name__ == "__main__":
    sys.exit(main())

"""The harness: the one program the grader starts inside a sandbox.

It loads the student's module and answers calls to the entry points that the part declares, nothing
else. Requests come on stdin, answers go out on the original stdout; the process's own stdout is
pointed at stderr first, so anything the student prints lands in the output log, never in the
protocol stream. Nothing here is trusted by the grader: every answer is checked outside.

Run as:  python3 -I harness.py --submission DIR [--site DIR]

`Dispatcher` answers one request at a time and knows nothing of pipes, so the grader's fast tests can
drive the very same code in-process (grader/sandbox/inprocess_backend.py).
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


def wire_module():
    """The wire format: `wire` beside this file inside the sandbox, `grader.harness.wire` in the grader."""
    if __package__:  # imported as grader.harness.harness, by the grader's in-process tests
        from grader.harness import wire
    else:  # run as a script in the sandbox, with /opt/harness first on sys.path
        import wire
    return wire


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
        self.wire = wire_module()
        self.decoder = self.wire.FrameDecoder()
        self.pending: list[tuple[dict, bytes]] = []

    def receive(self) -> tuple[dict, bytes] | None:
        while not self.pending:
            chunk = self.inp.read1(1 << 20)
            if not chunk:
                return None
            self.pending.extend(self.decoder.feed(chunk))
        return self.pending.pop(0)

    def send(self, header: dict, payload: bytes = b"") -> None:
        sys.stderr.flush()
        data = memoryview(self.wire.encode_frame(header, payload))
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


class Dispatcher:
    """The student's module and the objects its entry points stored, answering one request at a time."""

    def __init__(self, submission: Path):
        self.submission = submission
        self.wire = wire_module()
        self.module: Any = None
        self.entries: dict[str, dict] = {}
        self.objects: dict[str, Any] = {}

    def hello(self, request: dict, payload: bytes = b"") -> dict:
        """Import the student's module, then rebuild the frozen objects the grader sent (a scoring
        process); the answer says whether each step worked."""
        import torch

        self.entries = request.get("entries", {})
        torch.set_num_threads(max(1, int(request.get("threads", 1))))
        torch.manual_seed(int(request.get("seed", 0)))
        started = time.perf_counter()
        try:
            self.module = load_module(self.submission, request["module"])
        except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit at import: all are the student's
            return {"op": "hello", "ok": False, "error": describe_error(exc, self.submission)}
        imported = time.perf_counter()
        errors = self.restore(request.get("restore"), payload)
        return {"op": "hello", "ok": True, "import_seconds": imported - started,
                "restore_seconds": time.perf_counter() - imported, "restore_errors": errors,
                "versions": {"python": sys.version.split()[0], "torch": torch.__version__},
                "cuda": torch.cuda.is_available()}

    def restore(self, packed: Any, payload: bytes) -> dict[str, dict]:
        """Rebuild each frozen object as `build(config)`, load its tensors and its train/eval modes.
        Returns the errors by object name: a model that does not restore is the student's to fix."""
        if not packed:
            return {}
        errors: dict[str, dict] = {}
        for name, spec in self.wire.unpack_value(packed, payload).items():
            try:
                build = getattr(self.module, spec["build"], None)
                if not callable(build):
                    raise AttributeError(f"your module defines no function {spec['build']}(config) that rebuilds "
                                         f"{name} for the grader")
                obj = build(spec["config"])
                if spec["state"]:
                    obj.load_state_dict(spec["state"], strict=True)
                training = set(spec["training"])
                for module_name, module in getattr(obj, "named_modules", lambda: [])():
                    module.training = module_name in training
                self.objects[name] = obj
            except BaseException as exc:  # noqa: BLE001 - the student's build function, whatever it raises
                errors[name] = describe_error(exc, self.submission)
        return errors

    def export(self, name: str) -> tuple[dict, bytes]:
        """The declared state of a trained object: its `config` (plain data), its `state_dict()` tensors,
        which of its submodules are in training mode, and how many threads torch was left to use (a fit
        that chose one thread scores on one). Nothing else of the training process survives. Sent only
        inside the answer of the call that returned the object (`call`), never on request."""
        import torch

        started = time.perf_counter()
        try:
            obj = self.objects[name]
            config = getattr(obj, "config", None)
            if not isinstance(config, dict):
                raise TypeError(f"the object your training function returned ({type(obj).__name__}) has no "
                                "`config` dict: the grader rebuilds it from its config and its state_dict()")
            state = dict(obj.state_dict()) if callable(getattr(obj, "state_dict", None)) else {}
            training = ([n for n, m in obj.named_modules() if m.training]
                        if isinstance(obj, torch.nn.Module) else [])
            packed, out = self.wire.pack_value({"config": config, "state": state, "training": training,
                                                "threads": torch.get_num_threads()})
            return {"ok": True, "result": packed, "seconds": time.perf_counter() - started}, out
        except BaseException as exc:  # noqa: BLE001 - state_dict() and friends are the student's code
            return {"ok": False, "seconds": time.perf_counter() - started,
                    "error": describe_error(exc, self.submission)}, b""

    def call(self, request: dict, payload: bytes) -> tuple[dict, bytes]:
        """Run one declared entry point and pack its answer (or the exception it raised)."""
        call_id = request.get("id")
        entry = request.get("entry")
        started = time.perf_counter()
        try:
            func = self._resolve(entry)
            arguments = self.wire.unpack_value(request.get("value"), payload)
            if not isinstance(arguments, dict):
                raise self.wire.WireError("a call carries a dict of args and kwargs")
            result = func(*arguments.get("args", []), **arguments.get("kwargs", {}))
            stores = self.entries[entry].get("stores")
            if not stores:
                packed, out = self.wire.pack_value(result)
                return {"id": call_id, "ok": True, "result": packed, "seconds": time.perf_counter() - started}, out
            self.objects[stores] = result
            seconds = time.perf_counter() - started
            # The declared state goes back in this very answer, copied the moment the training call returns:
            # a thread or child that goes on training afterwards has no time in which it could still count.
            state, out = self.export(stores)
            return {"id": call_id, "ok": True, "result": {"$object": stores, "type": type(result).__name__},
                    "state": state, "seconds": seconds}, out
        except self.wire.WireError as exc:
            return {"id": call_id, "ok": False, "seconds": time.perf_counter() - started,
                    "error": {"type": "ResultError", "builtin": True, "message": str(exc), "where": "",
                              "traceback": ""}}, b""
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are the student's too
            return {"id": call_id, "ok": False, "seconds": time.perf_counter() - started,
                    "error": describe_error(exc, self.submission)}, b""

    def _resolve(self, entry: Any):
        if entry not in self.entries:
            raise LookupError(f"{entry!r} is not an entry point of this part")
        owner, _, attr = entry.rpartition(".")
        target = self.objects.get(owner) if owner else self.module
        if target is None:
            raise LookupError(f"there is no {owner!r} yet: the call that creates it has not succeeded")
        func = getattr(target, attr, None)
        if not callable(func):
            raise AttributeError(f"your code defines no callable {entry!r}")
        return func


def main() -> int:
    args = parse_args()
    sys.path[:0] = [str(HERE), *args.site]
    channel = Channel()
    # Our own imports come first, so a submission that ships torch.py or numpy.py cannot shadow them.
    import numpy  # noqa: F401
    import torch  # noqa: F401

    submission = Path(args.submission).resolve()
    sys.path.append(str(submission))  # last: the student's helper modules, never ahead of the libraries
    dispatcher = Dispatcher(submission)

    hello, payload = channel.receive() or ({}, b"")
    if hello.get("op") != "hello":
        return 2
    answer = dispatcher.hello(hello, payload)
    channel.send(answer)
    if not answer["ok"]:
        return 0
    while True:
        frame = channel.receive()
        if frame is None:
            return 0
        request, payload = frame
        if request.get("op") == "bye":
            return 0
        channel.send(*dispatcher.call(request, payload))


if __name__ == "__main__":
    sys.exit(main())

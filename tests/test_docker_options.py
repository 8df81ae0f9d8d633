"""The container the docker backend asks for. No GPU exists on CI machines, so the GPU request is
checked in the options handed to the Docker API (the one thing here that stands in for hardware)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.sandbox import InfrastructureError
from grader.sandbox.docker_backend import LABEL, DockerBackend
from grader.sandbox.session import Limits


def options(gpus: list[str], gpu: bool) -> dict:
    backend = DockerBackend(client=None, image="dd2601-sandbox:latest", runtime=None, gpus=gpus)
    return backend.container_options(Path("/srv/run-1/submission"), Limits(), label="run-1-1", gpu=gpu)


def test_cpu_parts_get_no_device_request_even_on_a_gpu_worker():
    assert "device_requests" not in options(["GPU-1234"], gpu=False)


def test_gpu_parts_get_exactly_the_workers_gpu_by_uuid():
    requests = options(["GPU-aaaa", "GPU-bbbb"], gpu=True)["device_requests"]
    assert len(requests) == 1
    assert requests[0]["DeviceIDs"] == ["GPU-aaaa"] and requests[0]["Capabilities"] == [["gpu"]]


def test_a_gpu_part_on_a_worker_without_gpus_is_an_infrastructure_error():
    with pytest.raises(InfrastructureError, match="GRADER_GPUS"):
        options([], gpu=True)


def test_hardening_options():
    o = options([], gpu=False)
    assert o["network_mode"] == "none" and o["read_only"] is True
    assert o["cap_drop"] == ["ALL"] and any(s.startswith("no-new-privileges") for s in o["security_opt"])
    assert o["user"] == "10001:10001" and o["mem_limit"] == o["memswap_limit"]
    assert o["pids_limit"] == 64 and o["ipc_mode"] == "private"
    assert o["volumes"] == {"/srv/run-1/submission": {"bind": "/submission", "mode": "ro"}}
    assert set(o["environment"]) <= {"HOME", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "PYTHONDONTWRITEBYTECODE",
                                     "PYTHONUNBUFFERED"}
    assert o["labels"][LABEL] == "1" and o["labels"]["org.dd2601.run"] == "run-1-1"

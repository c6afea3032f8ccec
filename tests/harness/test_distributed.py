"""Many devices and many processes: the runner equals the one-device run.

The multi-device runs happen in fresh processes (``tests/_distributed_worker.py``):
one with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``, and a job of
two processes on 127.0.0.1 joined through ``jax.distributed.initialize`` (JAX's
gloo CPU collectives). This pytest process keeps its own single CPU device.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jax_reinforce.harness.devices import HEARTBEAT_TIMEOUT_S, initialize_distributed, select_devices
from jax_reinforce.harness.runner import mesh_shape

WORKER = Path(__file__).resolve().parents[1] / "_distributed_worker.py"
TIMEOUT_S = 240  # hard limit for each subprocess run; normally about 25 s
REFERENCE_SEEDS = 8  # the most seeds of any case (tests/_distributed_worker.py)


@functools.lru_cache(maxsize=None)
def _worker_module():
    spec = importlib.util.spec_from_file_location("_distributed_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def _reference_of_all(stop):
    """The one-device run of REFERENCE_SEEDS seeds (NumPy), trained here once for every test that needs it.

    Compiling it is most of those tests' time. Seed ``i``'s key and arithmetic do
    not depend on the seeds vmapped beside it (batches of 2 or more agents,
    the trainer's options): the run of ``n`` seeds is its first ``n``.
    """
    return _worker_module().reference(REFERENCE_SEEDS, stop)


def _reference(num_seeds, stop):
    """The one-device run of ``num_seeds`` seeds: ``(state, metrics)``."""
    assert 1 <= num_seeds <= REFERENCE_SEEDS, num_seeds
    state, metrics = _reference_of_all(stop)
    return jax.tree.map(lambda x: x[:num_seeds], state), {k: v[:num_seeds] for k, v in metrics.items()}


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _assert_case_equal(got_path, want_path):
    """Every state leaf and metric of a case: integers equal, floats to 1e-5 (NaN where NaN)."""
    with np.load(got_path) as got, np.load(want_path) as want:
        assert sorted(got.files) == sorted(want.files)
        for name in want.files:
            a, b = got[name], want[name]
            assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, a.dtype, b.shape, b.dtype)
            if np.issubdtype(b.dtype, np.floating):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)


def test_select_devices_one_process():
    (only,) = jax.devices()
    assert select_devices(None) == [only]
    assert select_devices("all") == [only]
    assert select_devices(1) == [only]
    assert select_devices(" 1 ") == [only]
    allowed = r"devices \(--devices\) must be 'all' or an integer in \[1, 1\]"
    for bad, shown in ((0, "0"), (2, "2"), ("9", "9"), ("-1", "-1"), ("two", "two"), (True, "True")):
        with pytest.raises(ValueError, match=rf"{allowed}; got '{shown}'"):
            select_devices(bad)


def test_initialize_distributed_validates_before_joining(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kwargs: calls.append(kwargs))
    assert initialize_distributed(None, None, None) is False
    bad = [
        (("127.0.0.1:1234", None, None), r"go together; missing --num-processes, --process-id"),
        ((None, 2, 0), r"go together; missing --coordinator"),
        (("localhost", 2, 0), r"coordinator \(--coordinator\) must be HOST:PORT .*; got 'localhost'"),
        (("host:0", 2, 0), r"coordinator \(--coordinator\) must be HOST:PORT"),
        (("host:70000", 2, 0), r"coordinator \(--coordinator\) must be HOST:PORT"),
        ((":1234", 2, 0), r"coordinator \(--coordinator\) must be HOST:PORT"),
        (("host:1234", 0, 0), r"num_processes \(--num-processes\) must be an integer >= 1; got 0"),
        (("host:1234", "2", 0), r"num_processes \(--num-processes\) must be an integer >= 1; got '2'"),
        (("host:1234", 2, 2), r"process_id \(--process-id\) must be an integer in \[0, 1\]; got 2"),
        (("host:1234", 2, -1), r"process_id \(--process-id\) must be an integer in \[0, 1\]; got -1"),
    ]
    for args, message in bad:
        with pytest.raises(ValueError, match=message):
            initialize_distributed(*args)
    assert calls == []
    assert initialize_distributed("10.0.0.1:1234", 2, 1, timeout_s=7) is True
    assert calls == [dict(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1, initialization_timeout=7,
                          heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)]


@pytest.mark.parametrize(
    ("num_seeds", "num_envs", "num_devices", "shape"),
    [
        (8, 8, 4, (4, 1)),  # seeds only
        (5, 8, 4, (4, 1)),  # seeds only, padded to 8
        (4, 8, 1, (1, 1)),
        (3, 8, 4, (2, 2)),  # fewest environment shards leaving no device only padding
        (2, 8, 4, (2, 2)),
        (1, 8, 4, (1, 4)),
        (1, 32, 8, (1, 8)),
    ],
)
def test_mesh_shape(num_seeds, num_envs, num_devices, shape):
    assert mesh_shape(num_seeds, num_envs, num_devices) == shape


def test_mesh_shape_warns_when_devices_hold_only_padding():
    with pytest.warns(UserWarning, match="hold only padding"):
        assert mesh_shape(1, 6, 4) == (2, 2)
    with pytest.warns(UserWarning, match="hold only padding"):
        assert mesh_shape(1, 7, 4) == (4, 1)


def test_one_device_runner_is_bitwise_the_vmapped_run():
    worker = _worker_module()
    config = worker.config_of(4, True)
    runner = worker.train_chunked(config, 2, None)  # None: this process's one device
    assert runner.env_shards == 1 and runner.mesh is None and runner.owned.tolist() == [0, 1, 2, 3]
    assert runner.iterations_run == config.iterations
    state, metrics = _reference(4, True)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(runner.state)):
        np.testing.assert_array_equal(a, b)
    for name, values in metrics.items():
        np.testing.assert_array_equal(values, runner.history[name], err_msg=name)


def test_four_devices_equal_one_device(tmp_path):
    """4 CPU devices in one process; seeds sharded (and environments, for 3 seeds)."""
    result = subprocess.run(
        [sys.executable, str(WORKER), "devices", str(tmp_path)],
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cases = {c["case"]: c for c in _json_lines(result.stdout)}
    expected = {  # case: (mesh when environments are split, collectives in the compiled chunk)
        "seeds8": (None, False),
        "seeds5_stop": (None, False),
        "seeds3": ({"seeds": 2, "envs": 2}, True),
    }
    assert set(cases) == set(expected), result.stdout
    worker = _worker_module()
    assert set(worker.DEVICE_CASES) == set(expected)
    assert max(n for n, _, _ in worker.DEVICE_CASES.values()) == REFERENCE_SEEDS
    for name, (mesh, communicates) in expected.items():
        case = cases[name]
        assert case["mesh"] == mesh and case["env_shards"] == (1 if mesh is None else mesh["envs"]), case
        if communicates:
            # Split environments: gradient, baseline and stop tests summed over the group.
            assert case["collectives"]["all-reduce"] > 0, case
            assert "each agent's environments split" in case["describe"], case
        else:
            # Seeds dealt over the devices: nothing crosses devices inside a compiled chunk.
            assert sum(case["collectives"].values()) == 0, case
            assert case["describe"].endswith("the seeds dealt over them"), case
        num_seeds, stop, _ = worker.DEVICE_CASES[name]
        want = tmp_path / f"{name}.reference.npz"
        worker.save_case(want, *_reference(num_seeds, stop))
        _assert_case_equal(tmp_path / f"{name}.npz", want)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_job(tmp_path):
    """Two processes of 2 CPU devices each on 127.0.0.1; process 0 gathers and writes every seed."""
    port = _free_port()
    dirs = [tmp_path / f"process{i}" for i in range(2)]
    procs, logs = [], []
    try:
        for i, out in enumerate(dirs):
            out.mkdir()
            log = open(tmp_path / f"process{i}.log", "w+")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, str(WORKER), "process", str(out), str(i), "2", str(port)],
                env=_env(), stdout=log, stderr=subprocess.STDOUT,
            ))
        deadline = time.monotonic() + TIMEOUT_S
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.2)
        timed_out = any(p.poll() is None for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        outputs = []
        for log in logs:
            log.seek(0)
            outputs.append(log.read())
            log.close()
    report = "\n".join(
        f"--- process {i} (exit {p.returncode})\n{text[-3000:]}" for i, (p, text) in enumerate(zip(procs, outputs))
    )
    assert not timed_out, f"killed after {TIMEOUT_S} s\n{report}"
    assert all(p.returncode == 0 for p in procs), report

    worker = _worker_module()
    lines = [{c["case"]: c for c in _json_lines(text)} for text in outputs]
    for case in (lines[0]["select_devices"], lines[1]["select_devices"]):
        assert case["default"] == case["two"] == [0, 1] and case["all"] == [0, 0, 1, 1], case
        assert case["three"] == "devices (--devices) must be 'all' or a multiple of the 2 processes in [2, 4]; got '3'"
    assert lines[0]["seeds4_stop"]["owned_seeds"] == [0, 1], report  # each process trains its share
    assert lines[1]["seeds4_stop"]["owned_seeds"] == [2, 3], report
    assert lines[0]["seeds4_stop"]["env_shards"] == 1, report
    assert lines[1]["seeds1_stop"]["mesh"] == {"seeds": 1, "envs": 4}, report  # split across processes
    assert sorted(p.name for p in dirs[0].iterdir()) == sorted(f"{name}.npz" for name in worker.PROCESS_CASES)
    assert list(dirs[1].iterdir()) == []  # only process 0 writes

    for name, (num_seeds, stop, _) in worker.PROCESS_CASES.items():
        want = tmp_path / f"{name}.reference.npz"
        worker.save_case(want, *_reference(num_seeds, stop))
        _assert_case_equal(dirs[0] / f"{name}.npz", want)

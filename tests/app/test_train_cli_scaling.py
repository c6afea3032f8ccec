"""scripts/train.py over several CPU devices and over 2 processes on the loopback address."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from jax_reinforce.harness.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]
TINY = ["--num-envs", "8", "--iterations", "4", "--no-stop-when-solved", "--eval-episodes", "2", "--quiet"]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_devices_all_equals_one_device(tmp_path):
    # Two devices: every device compiles the program once (four: tests/harness/test_runner.py, test_distributed.py).
    runs = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        flags = ["--devices", "all"] if devices > 1 else []
        proc = subprocess.run(TRAIN + TINY + ["--num-seeds", "4", "--out", str(out), *flags],
                              env=_env(devices), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"{devices} cpu device" in proc.stderr or devices == 1
        runs[devices], _ = load_checkpoint(out)
    # The seeds are dealt over the devices, each running the one-device program: bit for bit.
    for a, b in zip(runs[1], runs[2]):
        for name in ("w", "b"):
            np.testing.assert_array_equal(a[name], b[name])


def test_two_processes_write_one_run_directory_with_every_seed(tmp_path):
    port = _free_port()
    out = tmp_path / "run"
    procs = [
        subprocess.Popen(TRAIN + TINY + ["--num-seeds", "4", "--devices", "all", "--out", str(out),
                                         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                                         "--process-id", str(i)],
                         env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    deadline = time.monotonic() + 240
    try:
        for p in procs:
            p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outputs]
    params, config = load_checkpoint(out)
    assert config.num_seeds == 4
    assert params[0]["w"].shape[0] == 4
    assert {"config.json", "metrics.csv", "summary.json", "checkpoint.npz"} <= {f.name for f in out.iterdir()}
    # Each process trained its own seeds with the one-device program: the one-process run, bit for bit.
    alone = tmp_path / "alone"
    proc = subprocess.run(TRAIN + TINY + ["--num-seeds", "4", "--devices", "1", "--out", str(alone)],
                          env=_env(1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected, _ = load_checkpoint(alone)
    for a, b in zip(expected, params):
        for name in ("w", "b"):
            np.testing.assert_array_equal(a[name], b[name])
    assert (out / "metrics.csv").read_text() == (alone / "metrics.csv").read_text()


def test_resume_restores_the_device_count_where_results_depend_on_it(tmp_path):
    """One seed on 4 devices splits its environments (not bitwise one device): a resume keeps the 4 devices."""
    base = ["--num-envs", "8", "--no-stop-when-solved", "--eval-episodes", "2", "--quiet", "--num-seeds", "1"]

    def train(args, devices):
        return subprocess.run(TRAIN + base + args, env=_env(devices), capture_output=True, text=True, timeout=300)

    whole, part = tmp_path / "whole", tmp_path / "part"
    assert train(["--iterations", "4", "--devices", "4", "--out", str(whole)], 4).returncode == 0
    first = train(["--iterations", "2", "--devices", "4", "--out", str(part)], 4)
    assert first.returncode == 0, first.stderr[-2000:]
    # Resumed without --devices where only one device exists: refused in one line saying what to do.
    refused = train(["--resume", "--iterations", "4", "--out", str(part)], 1)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "over 4 devices" in refused.stderr and "--xla_force_host_platform_device_count=4" in refused.stderr
    # Resumed without --devices where 4 exist: the 4-device layout again, bitwise the uninterrupted run.
    resumed = train(["--resume", "--iterations", "4", "--out", str(part)], 4)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "4 cpu devices" in resumed.stderr
    for a, b in zip(load_checkpoint(whole)[0], load_checkpoint(part)[0]):
        for name in ("w", "b"):
            np.testing.assert_array_equal(a[name], b[name])
    assert (whole / "metrics.csv").read_bytes() == (part / "metrics.csv").read_bytes()

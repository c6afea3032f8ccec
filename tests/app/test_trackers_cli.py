"""train.py --tensorboard --wandb end to end (W&B offline), resume and overwrite; a default run loads no tracker."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"
TINY = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--eval-episodes", "0", "--quiet",
        "--no-stop-when-solved"]


def _helpers():
    spec = importlib.util.spec_from_file_location("tracker_tests", ROOT / "tests" / "harness" / "test_trackers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(tmp_path):
    return {**os.environ, "JAX_PLATFORMS": "cpu", "WANDB_MODE": "offline",
            "WANDB_ERROR_REPORTING": "false", "WANDB_SILENT": "true", "WANDB_CACHE_DIR": str(tmp_path / "wc"),
            "WANDB_CONFIG_DIR": str(tmp_path / "wcfg"), "WANDB_DATA_DIR": str(tmp_path / "wd")}


def train(args, env):
    return subprocess.run([sys.executable, str(TRAIN), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_trackers_log_every_iteration_and_a_resume_continues_them(tmp_path):
    helpers, env, out = _helpers(), _env(tmp_path), tmp_path / "run"
    first = train([*TINY, "--iterations", "3", "--out", out, "--tensorboard", "--wandb", "--wandb-group", "g"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((out / "run.json").read_text())["tensorboard"] is True
    # Resumed without the tracker flags: the run's own trackers go on, from iteration 3.
    again = train(["--resume", "--iterations", "5", "--out", out, "--quiet"], env)
    assert again.returncode == 0, again.stderr[-3000:]
    tb = helpers.scalars(out / "tensorboard")
    assert [step for step, _ in tb["return_median"]] == [0, 1, 2, 3, 4]  # every iteration once
    metrics = (out / "metrics.csv").read_text().splitlines()
    column = metrics[0].split(",").index("return_median")
    expected = [float(line.split(",")[column]) for line in metrics[1:]]
    assert all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for (_, a), b in zip(tb["return_median"], expected))
    runs = helpers.offline_runs(out)  # one W&B run, continued: one offline directory per process, one run id
    ids = {r.run.run_id for run in runs for r in helpers.wandb_records(run) if r.WhichOneof("record_type") == "run"}
    assert len(runs) == 2 and len(ids) == 1, (runs, ids)
    steps = [r["_step"] for run in runs for r in helpers.wandb_history(run) if "return_median" in r]
    assert steps == [0, 1, 2, 3, 4], steps
    # --overwrite clears the old run's tracker files (3 iterations: the first run's programs, from the cache).
    fresh = train([*TINY, "--iterations", "3", "--out", out, "--overwrite", "--tensorboard"], env)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert not (out / "wandb").exists()
    assert [step for step, _ in helpers.scalars(out / "tensorboard")["return_median"]] == [0, 1, 2]


def test_a_sweep_logs_each_setting(tmp_path):
    helpers, env, out = _helpers(), _env(tmp_path), tmp_path / "run"
    result = train([*TINY, "--iterations", "2", "--lr", "0.05,0.2", "--out", out, "--tensorboard"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    tb = helpers.scalars(out / "tensorboard")
    for g in (0, 1):
        assert [step for step, _ in tb[f"setting_{g}/return_median"]] == [0, 1]


def test_tracker_options_need_their_tracker_and_a_default_run_loads_no_tracker(tmp_path):
    env = _env(tmp_path)
    refused = train([*TINY, "--iterations", "1", "--out", tmp_path / "x", "--wandb-name", "n"], env)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "train.py: error: --wandb-project, --wandb-group and --wandb-name need --wandb")
    assert not (tmp_path / "x").exists()
    probe = ("import runpy, sys; sys.argv = ['train.py', *sys.argv[1:]]\n"
             "import jax_reinforce.app.cli as cli; cli.exit_now = lambda code: None\n"
             "try:\n    runpy.run_path(%r, run_name='__main__')\nfinally:\n"
             "    print('TRACKERS', sorted(m for m in ('tensorboardX', 'tensorboard', 'wandb') if m in sys.modules))\n"
             % str(TRAIN))
    ran = subprocess.run([sys.executable, "-c", probe, *TINY, "--iterations", "1", "--out", str(tmp_path / "run")],
                         env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "TRACKERS []" in ran.stdout, ran.stdout[-2000:]


def _online_env(tmp_path, **extra):
    """W&B online with no key anywhere (a fresh HOME, no netrc) and its server a closed local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in _env(tmp_path).items() if k not in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE")}
    return {**env, "HOME": str(tmp_path / "home"), "NETRC": str(tmp_path / "no-netrc"),
            "WANDB_BASE_URL": f"http://127.0.0.1:{port}", **extra}, f"http://127.0.0.1:{port}"


def test_wandb_online_without_a_key_is_refused_before_the_run_in_one_line(tmp_path):
    # Issue 26.8: W&B's refusal came after the checkpoint, config and run.json were written.
    env, host = _online_env(tmp_path)
    ran = train([*TINY, "--iterations", "1", "--out", tmp_path / "run", "--wandb"], env)
    assert ran.returncode == 2 and not (tmp_path / "run").exists(), ran.stderr[-3000:]
    assert ran.stderr.strip().splitlines()[-1] == (
        f"train.py: error: --wandb: no W&B API key for {host}: set WANDB_API_KEY or run wandb login, or log "
        f"without a network with WANDB_MODE=offline (upload later with wandb sync)")


def test_wandb_unreachable_is_refused_within_the_bound_before_the_run(tmp_path):
    # Issue 26.8: an unreachable server: 93 s of silence, then rc 2 with the run written.
    env, host = _online_env(tmp_path, WANDB_API_KEY="k" * 40)
    probe = ("import runpy, sys; sys.argv = ['train.py', *sys.argv[1:]]\n"
             "import jax_reinforce.harness.trackers as t; t.WANDB_TIMEOUT_S = 1.0\n"
             "runpy.run_path(%r, run_name='__main__')\n" % str(TRAIN))
    started = time.monotonic()
    ran = subprocess.run([sys.executable, "-c", probe, *TINY, "--iterations", "1", "--out", str(tmp_path / "run"),
                          "--wandb"], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert ran.returncode == 2, ran.stderr[-3000:]
    lines = ran.stderr.strip().splitlines()
    assert lines[-2:] == [f"W&B: checking the API key with {host} (at most 1 s)",
                          f"train.py: error: --wandb: W&B's server {host} did not answer within 1 s; check the "
                          f"network (or WANDB_BASE_URL), or log without a network with WANDB_MODE=offline (upload "
                          f"later with wandb sync)"]
    assert time.monotonic() - started < 60 and not (tmp_path / "run").exists()

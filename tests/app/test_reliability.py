"""Nothing lost, results reproducible: kill -9, SIGINT, SIGTERM, NaN, chunking, seed batching.

The runs here are real ``scripts/train.py`` processes on the CPU, compared bit
for bit with one uninterrupted run of the same config in chunks of 8
iterations. The interrupted runs go in chunks of 1, and resume in chunks of 5
or 3: each comparison is also one of two processes and of chunk sizes. Last,
property tests of the return computations against plain Python.
"""

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from _fast_jit import fast_jit
from hypothesis import given, settings
from hypothesis import strategies as st

from jax_reinforce import Config, agent_keys, make_env
from jax_reinforce.harness.compilation import compiler_options
from jax_reinforce.harness.runner import Runner
from jax_reinforce.core.returns import apply_baseline, complete_episode_mask, reward_to_go

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"
ITERATIONS = 60
RUN = ["--hidden", "8", "--num-envs", "8", "--num-seeds", "2", "--iterations", str(ITERATIONS),
       "--no-stop-when-solved", "--eval-episodes", "0", "--quiet"]


@pytest.fixture(scope="module")
def script_env():
    """CPU only, the suite's compilation cache (``tests/conftest.py``): the runs here share a config."""
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def train(args, env, timeout=180):
    return subprocess.run([sys.executable, str(TRAIN), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def start(args, env):
    return subprocess.Popen([sys.executable, str(TRAIN), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def checkpoint_entries(run_dir: Path) -> dict:
    with np.load(run_dir / "checkpoint.npz") as archive:
        return {name: archive[name] for name in archive.files}


def checkpoint_iteration(run_dir: Path) -> int:
    """The iteration of the run's checkpoint, or -1 while there is none (files are renamed in whole)."""
    try:
        return int(checkpoint_entries(run_dir)["state/iteration"].max())
    except FileNotFoundError:
        return -1


def wait_for_checkpoint(proc, run_dir: Path, at_least: int, timeout=120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        iteration = checkpoint_iteration(run_dir)
        if iteration >= at_least:
            return iteration
        assert proc.poll() is None, f"the run ended first: {proc.returncode}, {proc.stderr.read()}"
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint at iteration >= {at_least} within {timeout} s")


def assert_same_run(run_dir: Path, reference: Path):
    """Bitwise the same training state and metric history, and the same metrics.csv."""
    a, b = checkpoint_entries(reference), checkpoint_entries(run_dir)
    assert sorted(a) == sorted(b)
    for name in a:
        if name == "history/seconds":  # wall-clock, measured: only its shape is the same from run to run
            assert a[name].shape == b[name].shape and np.all(np.diff(b[name], axis=1) >= 0)
        elif name not in ("config", "run"):  # the same, but --iterations may have been typed in another order,
            # and the run's flags (checkpoint_every) differ
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    column = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",").index("iteration")
    assert [int(r.split(",")[column]) for r in rows] == list(range(ITERATIONS))  # one row per iteration


@pytest.fixture(scope="module")
def reference(tmp_path_factory, script_env):
    """One uninterrupted run in chunks of 8 iterations, checkpointed only at the start and end."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = train([*RUN, "--out", out, "--chunk-iterations", "8"], script_env)
    assert result.returncode == 0, result.stderr
    entries = checkpoint_entries(out)
    assert entries["state/iteration"].tolist() == [ITERATIONS, ITERATIONS]
    assert np.all(np.isfinite(entries["params/0/w"])) and np.all(entries["state/failed_at"] == -1)
    return out


# ------------------------------------------------------------------ reproducible


def test_seed_i_of_64_equals_seed_i_trained_alone_bitwise():
    """Through the trainer's own runner (which runs a lone agent as a pair, see runner.py)."""
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=64, iterations=4, stop_when_solved=False)
    spec = make_env(config.env)
    keys = agent_keys(config.seed, config.num_seeds)
    many = Runner(config, spec, 4, compiler_options())
    many.init(keys)
    while many.running().any():
        many.run_chunk()
    alone = Runner(config.replace(num_seeds=1), spec, 4, compiler_options())
    for i in (0, 17, 63):
        np.testing.assert_array_equal(agent_keys(config.seed, i + 1)[i], keys[i])  # the key ignores the seed count
        alone.init(keys[i : i + 1])
        first_row = alone.iterations_run  # the runner is reused: its history goes on growing
        while alone.running().any():
            alone.run_chunk()
        for a, b in zip(jax.tree.leaves(many.state), jax.tree.leaves(alone.state)):
            np.testing.assert_array_equal(a[i : i + 1], b)
        for name in many.history:
            np.testing.assert_array_equal(many.history[name][i : i + 1], alone.history[name][:, first_row:])
    assert not np.array_equal(many.state.params[0]["w"][0], many.state.params[0]["w"][1])


# ------------------------------------------------------------------ nothing lost


@pytest.mark.parametrize("kill_after", [0, 3], ids=["while-compiling", "mid-run"])
def test_kill_9_then_resume_equals_the_uninterrupted_run(kill_after, reference, tmp_path, script_env):
    out = tmp_path / "run"
    proc = start([*RUN, "--out", out, "--checkpoint-every", "1", "--chunk-iterations", "1"], script_env)
    try:
        killed_at = wait_for_checkpoint(proc, out, kill_after)
        proc.kill()  # SIGKILL: no handler, no clean-up
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint_iteration(out) < ITERATIONS, "the run finished before it was killed"
    # A write killed half-way leaves a temporary file; resuming clears it.
    (out / ".checkpoint.npz.killed.tmp").write_bytes(b"torn")
    result = train(["--resume", "--out", out, "--quiet", "--eval-episodes", "0", "--chunk-iterations", "5"], script_env)
    assert result.returncode == 0, result.stderr
    assert f"resuming {out} at iteration" in result.stderr
    assert killed_at <= int(result.stderr.split("at iteration")[1].split()[0]) < ITERATIONS
    assert_same_run(out, reference)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_and_says_how_to_resume(signum, code, reference, tmp_path, script_env):
    """The resume command printed is shell-quoted and complete (issue 26, items 5 and 16): pasted, it resumes the
    run in a directory whose name has a space and a quote, checkpointing as the run did."""
    out = tmp_path / "a run's dir"
    proc = start([*RUN, "--out", out, "--checkpoint-every", "4", "--chunk-iterations", "1"], script_env)
    try:
        wait_for_checkpoint(proc, out, 4)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    last = stderr.splitlines()[-1]
    command = shlex.split(last.split("resume with: ")[1])
    assert signal.Signals(signum).name in last and command == [
        "python", "scripts/train.py", "--resume", "--out", str(out), "--checkpoint-every", "4"], last
    stopped_at = int(last.split("at iteration")[1].split(";")[0])
    assert 4 <= stopped_at < ITERATIONS and checkpoint_iteration(out) == stopped_at  # saved where it stopped
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == stopped_at
    if signum == signal.SIGINT:
        result = train([*command[2:], "--quiet", "--eval-episodes", "0", "--chunk-iterations", "3"], script_env)
        assert result.returncode == 0, result.stderr
        assert_same_run(out, reference)
        assert json.loads((out / "run.json").read_text())["checkpoint_every"] == 4


def test_diverged_agents_are_frozen_reported_and_the_run_exits_3(tmp_path, script_env):
    out = tmp_path / "run"
    result = train([*RUN, "--out", out, "--lr", "1e30", "--optimizer", "sgd", "--eval-episodes", "2"], script_env)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.splitlines()[-1]
    assert message.startswith("train.py: error: 2 of 2 agents diverged (non-finite"), message
    entries = checkpoint_entries(out)
    failed_at = entries["state/failed_at"]
    assert np.all(failed_at >= 0) and np.all(failed_at < ITERATIONS)
    for seed, iteration in enumerate(failed_at):
        assert f"seed {seed} at iteration {iteration}" in message
        assert f"seed {seed} at iteration {iteration}" in result.stdout  # the printed report
    for name, value in entries.items():  # every number saved is finite: the failed update was not applied
        if value.dtype.kind == "f" and not name.startswith("history/") and name != "state/hparams/max_grad_norm":
            assert np.all(np.isfinite(value)), name
    assert np.all(entries["state/hparams/max_grad_norm"] == np.inf)  # unclipped
    # Every file is written; the summary names the diverged agents, metrics.csv counts them.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] == {str(i): int(at) for i, at in enumerate(failed_at)}
    assert (out / "learning_curve.png").is_file()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[-1] == "seeds_diverged" and rows[-1].split(",")[-1] == "2"
    assert len(rows) - 1 == int(entries["state/iteration"].max())
    # A run with diverged agents resumes (nothing is left to train here: it reports them again).
    again = train(["--resume", "--out", out, "--quiet", "--eval-episodes", "0"], script_env)
    assert again.returncode == 3 and "2 of 2 agents diverged" in again.stderr.splitlines()[-1], again.stderr


def test_one_diverging_agent_does_not_stop_the_others():
    """Agent 1 is pushed to overflow; it is frozen at its last finite state, the others train as if alone."""
    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=3, iterations=6, stop_when_solved=False)
    spec = make_env(config.env)
    runner = Runner(config, spec, 3, compiler_options())
    fresh = runner.init()
    broken = jax.tree.map(np.array, fresh)
    broken.params[1]["w"][1] = 3e38  # finite, but its logits (and so the loss) overflow
    runner.restore(broken, runner.history)
    while runner.running().any():
        runner.run_chunk()
    assert runner.state.failed_at.tolist() == [-1, 0, -1]
    assert runner.state.iteration.tolist() == [6, 1, 6]
    for got, start in zip(jax.tree.leaves(runner.state.params), jax.tree.leaves(broken.params)):
        np.testing.assert_array_equal(got[1], start[1])  # agent 1 frozen where it was
    with_broken = runner.state
    # The reference: the same agents, none broken. The runner is reused (fresh agents, its compiled programs).
    reference = runner
    reference.init()
    assert reference.running().all()
    while reference.running().any():
        reference.run_chunk()
    assert reference.state.failed_at.tolist() == [-1, -1, -1]
    for a, b in zip(jax.tree.leaves(with_broken.params), jax.tree.leaves(reference.state.params)):
        np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])


def test_an_overflowing_optimizer_state_counts_as_diverged():
    """--entropy-coef 1e30: a finite loss whose gradient's square overflows Adam's second moment."""
    from jax_reinforce.core.training import make_train

    config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=1, iterations=3, stop_when_solved=False,
                    entropy_coef=1e30)
    _, metrics = fast_jit(make_train(config))(agent_keys(config.seed, 1)[0])  # research code's jit, compiled fast
    assert np.isnan(np.asarray(metrics["loss"])[1:]).all()  # stopped after the first (failed) iteration
    state_config = Config(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=1, iterations=3,
                          stop_when_solved=False, entropy_coef=1e30)
    runner = Runner(state_config, make_env(state_config.env), 3, compiler_options())
    runner.init()
    runner.run_chunk()
    assert runner.state.failed_at.tolist() == [0]


# ------------------------------------------------------------------ numerical robustness: returns vs plain Python

PROPERTY = settings(derandomize=True, max_examples=80, deadline=None, database=None)
MAX_STEPS, MAX_ENVS = 6, 3


@st.composite
def trajectories(draw):
    """Small time-major batches as nested lists: rewards, episode ends, gamma, a step mask."""
    steps = draw(st.integers(1, MAX_STEPS))
    envs = draw(st.integers(1, MAX_ENVS))

    def grid(elements):
        return draw(st.lists(st.lists(elements, min_size=envs, max_size=envs), min_size=steps, max_size=steps))

    # XLA on the CPU flushes subnormal floats to zero; they are no part of the contract.
    rewards = grid(st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32))
    ends = grid(st.booleans())
    gamma = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]) | st.floats(0, 1, allow_subnormal=False, width=32))
    mask = grid(st.booleans())
    return rewards, ends, gamma, mask


def padded(rows, dtype):
    """``rows`` zero-padded to (MAX_STEPS, MAX_ENVS), so every example runs one compiled program.

    Zero rewards, no episode end and mask 0 after the real steps and beside
    the real environments change none of the real steps' results.
    """
    out = np.zeros((MAX_STEPS, MAX_ENVS), dtype)
    out[: len(rows), : len(rows[0])] = rows
    return out


reward_to_go_jit = jax.jit(reward_to_go)
complete_episode_mask_jit = jax.jit(complete_episode_mask)
apply_baseline_jit = jax.jit(apply_baseline, static_argnums=2)


def reference_reward_to_go(rewards, ends, gamma):
    steps, envs = len(rewards), len(rewards[0])
    out = [[0.0] * envs for _ in range(steps)]
    for e in range(envs):
        g = 0.0
        for t in reversed(range(steps)):
            g = rewards[t][e] + (0.0 if ends[t][e] else gamma * g)
            out[t][e] = g
    return out


def reference_complete_mask(ends):
    steps, envs = len(ends), len(ends[0])
    return [[any(ends[k][e] for k in range(t, steps)) for e in range(envs)] for t in range(steps)]


def reference_centred(returns, mask):
    values = [g for row, mrow in zip(returns, mask) for g, m in zip(row, mrow) if m]
    count = max(len(values), 1)
    mean = sum(values) / count
    centred = [[(g - mean) if m else 0.0 for g, m in zip(row, mrow)] for row, mrow in zip(returns, mask)]
    std = math.sqrt(sum(c * c for row in centred for c in row) / count)
    return centred, std


@PROPERTY
@given(trajectories())
def test_reward_to_go_matches_plain_python(trajectory):
    rewards, ends, gamma, _ = trajectory
    steps, envs = len(rewards), len(rewards[0])
    expected = np.array(reference_reward_to_go(rewards, ends, gamma))
    got = np.asarray(reward_to_go_jit(padded(rewards, np.float32), padded(ends, bool), gamma))[:steps, :envs]
    scale = 1.0 + np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * scale * steps)
    # Nothing leaks across an episode end: at an end step the return is the reward itself.
    ends_np = np.array(ends)
    np.testing.assert_array_equal(got[ends_np], np.array(rewards, np.float32)[ends_np])


@PROPERTY
@given(trajectories())
def test_complete_episode_mask_matches_plain_python(trajectory):
    _, ends, _, _ = trajectory
    steps, envs = len(ends), len(ends[0])
    got = np.asarray(complete_episode_mask_jit(padded(ends, bool)))[:steps, :envs]
    np.testing.assert_array_equal(got, reference_complete_mask(ends))


@PROPERTY
@given(trajectories(), st.sampled_from(["none", "mean", "normalize"]))
def test_apply_baseline_matches_plain_python(trajectory, baseline):
    rewards, ends, gamma, mask = trajectory
    steps, envs = len(rewards), len(rewards[0])
    returns = reference_reward_to_go(rewards, ends, gamma)
    got = np.asarray(apply_baseline_jit(padded(returns, np.float32), padded(mask, np.float32), baseline))
    assert np.all(got[steps:] == 0) and np.all(got[:, envs:] == 0)  # the padding is masked out
    got = got[:steps, :envs]
    mask_np = np.array(mask, bool)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got[~mask_np], 0.0)  # masked steps carry no weight
    centred, std = reference_centred(returns, mask)
    tol = 1e-5 * (1.0 + np.abs(np.array(returns)).max())
    if baseline == "none":
        np.testing.assert_allclose(got, np.array(returns) * mask_np, rtol=0, atol=tol)
    elif baseline == "mean":
        np.testing.assert_allclose(got, centred, rtol=0, atol=tol)
    else:
        # Compared un-normalised: w * (std + 1e-8) = G - mean, to float32 rounding of G's scale.
        # (Dividing by a std of rounding noise can make w itself O(1) where G is constant.)
        np.testing.assert_allclose(got * (std + 1e-8), centred, rtol=0, atol=tol)
        if std > 1e-3 * (1.0 + np.abs(np.array(returns)).max()):  # well conditioned: unit variance
            assert abs(float(np.sum(got**2)) / max(mask_np.sum(), 1) - 1.0) < 1e-3

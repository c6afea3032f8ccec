"""Sweeps: hyper-parameters as traced inputs, the grid x seeds in one program, per-setting results (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import jax_reinforce as jr
from jax_reinforce.harness.compilation import compiler_options
from jax_reinforce.core.config import SWEEPABLE, Config
from jax_reinforce.harness.runner import Runner

ROOT = Path(__file__).resolve().parents[2]
BASE = dict(env="CartPole-v1", hidden=(8,), num_envs=8, num_seeds=2, iterations=4, stop_when_solved=False)


# ------------------------------------------------------------------ the config


def test_sweepable_fields_take_lists_and_their_product_is_the_grid():
    config = Config.from_flags({"learning_rate": "0.01,0.1", "max_grad_norm": "none,0.5,1", "num_seeds": "3"})
    assert config.swept == ("learning_rate", "max_grad_norm")
    assert config.num_settings == 6 and config.num_agents == 18
    settings = config.settings()
    assert [(s["learning_rate"], s["max_grad_norm"]) for s in settings] == [
        (0.01, None), (0.01, 0.5), (0.01, 1.0), (0.1, None), (0.1, 0.5), (0.1, 1.0)]  # the last varies fastest
    assert all(s["gamma"] == 0.99 and s["entropy_coef"] == 0.0 for s in settings)
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert Config(learning_rate=[0.3]).learning_rate == 0.3  # one value is no sweep
    assert Config().settings() == [{"learning_rate": 0.1, "gamma": 0.99, "entropy_coef": 0.0, "max_grad_norm": None}]


@pytest.mark.parametrize(("texts", "message"), [
    ({"num_envs": "8,16"}, "num_envs (--num-envs) takes one value: it shapes the compiled program, so it cannot be "
                           "swept (only --lr, --gamma, --entropy-coef, --max-grad-norm take comma-separated lists)"),
    ({"optimizer": "adam,sgd"}, "optimizer (--optimizer) takes one value"),
    ({"baseline": "mean,none"}, "baseline (--baseline) takes one value"),
    ({"learning_rate": "0.1,0.1"}, "learning_rate (--lr) must be a list of distinct values (a sweep)"),
    ({"gamma": "0.9,1.5"}, "gamma (--gamma) must be a number in [0, 1]; got 1.5"),
    ({"learning_rate": "0.1,1e-50"}, "learning_rate (--lr) must be a finite number > 0 that float32 holds"),
])
def test_lists_are_refused_where_they_cannot_be_swept(texts, message):
    with pytest.raises(ValueError) as error:
        Config.from_flags(texts)
    assert str(error.value).startswith(message), str(error.value)


def test_a_swept_field_must_be_given_to_make_train():
    train = jr.make_train(Config(**BASE, learning_rate=(0.05, 0.1)))
    with pytest.raises(ValueError, match=r"learning_rate is swept over \(0.05, 0.1\) in this config"):
        jax.eval_shape(train, jr.agent_keys(0, 1)[0])
    jax.eval_shape(train, jr.agent_keys(0, 1)[0], 0.05)  # given: fine


# ------------------------------------------------------------------ the same agents


def _run(runner):
    runner.init()
    while runner.running().any():
        runner.run_chunk()
    return runner


def test_agent_of_a_sweep_equals_that_seed_trained_alone_with_that_setting_bitwise():
    sweep = Config(**BASE, learning_rate=(0.05, 0.2), entropy_coef=(0.0, 0.01), max_grad_norm=(None, 0.3))
    spec = jr.make_env(sweep.env)
    many = _run(Runner(sweep, spec, 3, compiler_options()))
    assert many.state.params[0]["w"].shape[0] == sweep.num_agents == 16
    for g in (0, 5, 7):
        alone = _run(Runner(Config(**BASE, **sweep.settings()[g]), spec, 3, compiler_options()))
        rows = slice(g * sweep.num_seeds, (g + 1) * sweep.num_seeds)
        for a, b in zip(jax.tree.leaves(many.state), jax.tree.leaves(alone.state)):
            np.testing.assert_array_equal(np.asarray(a)[rows], b)
        for name in many.history:
            np.testing.assert_array_equal(many.history[name][rows], alone.history[name], err_msg=name)
    # The settings do differ: a larger step moves the parameters further.
    assert not np.array_equal(many.state.params[0]["w"][0], many.state.params[0]["w"][8])


def test_no_clipping_is_bitwise_a_clip_at_infinity():
    grads = {"w": jax.random.normal(jax.random.PRNGKey(0), (4, 8)) * 3.0, "b": jax.random.normal(jax.random.PRNGKey(1), (8,))}
    params = jax.tree.map(np.zeros_like, grads)
    plain = optax.adam(0.1)
    clipped = optax.chain(optax.clip_by_global_norm(np.float32(np.inf)), optax.adam(0.1))
    a, _ = jax.jit(plain.update)(grads, plain.init(params), params)
    b, _ = jax.jit(clipped.update)(grads, clipped.init(params), params)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_a_second_sweep_with_other_values_reuses_the_compiled_programs(tmp_path):
    from jax_reinforce.harness import compilation as program_cache

    cache = tmp_path / "programs"
    program_cache.enable_program_cache(cache)
    try:
        spec = jr.make_env("CartPole-v1")
        _run(Runner(Config(**BASE, learning_rate=(0.05, 0.1)), spec, 4, compiler_options(), max_batch=4))
        programs = sorted(p.name for p in cache.iterdir())
        assert any(name.startswith("train_chunk-") for name in programs), programs
        other = Config(**{**BASE, "seed": 7}, learning_rate=0.02, gamma=(0.9, 0.95))  # other values, other seed
        _run(Runner(other, spec, 4, compiler_options(), max_batch=4))
        assert sorted(p.name for p in cache.iterdir()) == programs  # nothing new
        bigger = Config(**BASE, learning_rate=(0.02, 0.3), gamma=(0.9, 0.95))  # 8 agents: a new init's shape only
        _run(Runner(bigger, spec, 4, compiler_options(), max_batch=4))
        new = sorted(set(p.name for p in cache.iterdir()) - set(programs))
        assert new and all(name.startswith("init-") for name in new), new
    finally:
        program_cache.disable_program_cache()


# ------------------------------------------------------------------ results, from research code and the command line


def test_train_sweep_returns_per_setting_per_seed_results(tmp_path):
    result = jr.train_sweep(Config(**BASE), {"learning_rate": [0.05, 0.2]}, tmp_path / "run", eval_episodes=0,
                            compile_cache=False)
    assert [s["learning_rate"] for s in result.settings] == [0.05, 0.2]
    assert result.solved_at.shape == result.final_return.shape == (2, 2)
    assert result.params[0]["w"].shape == (2, 2, 4, 8)
    assert [row["setting"] for row in result.rows] == [0, 1] and result.best in (0, 1)
    lines = (tmp_path / "run" / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("setting,learning_rate,gamma,entropy_coef,max_grad_norm,seeds,seeds_solved")
    assert len(lines) == 3
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["num_settings"] == 2 and summary["num_agents"] == 4
    assert summary["best_setting"]["setting"] == result.best and "most seeds solved" in summary["best_setting"]["rule"]
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("setting,iteration,") and {m.split(",")[0] for m in metrics[1:]} == {"0", "1"}
    assert (tmp_path / "run" / "sweep.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="only learning_rate, gamma, entropy_coef, max_grad_norm can be swept"):
        jr.train_sweep(Config(**BASE), {"num_envs": [8, 16]}, tmp_path / "other")


def test_a_sweep_resumes_bitwise(tmp_path):
    config = Config(**{**BASE, "iterations": 6}, learning_rate=(0.05, 0.2))
    whole = jr.train_run(config, tmp_path / "whole", eval_episodes=0, compile_cache=False)
    jr.train_run(config.replace(iterations=3), tmp_path / "part", eval_episodes=0, compile_cache=False)
    resumed = jr.train_run(config, tmp_path / "part", resume=True, typed_fields=["iterations"], eval_episodes=0,
                           compile_cache=False)
    for a, b in zip(jax.tree.leaves(whole.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "whole" / "sweep.csv").read_bytes() == (tmp_path / "part" / "sweep.csv").read_bytes()


def test_the_command_line_sweeps_and_refuses_lists_of_shape_flags(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    train = [sys.executable, str(ROOT / "scripts" / "train.py"), "--hidden", "8", "--num-envs", "8",
             "--num-seeds", "2", "--iterations", "3", "--eval-episodes", "0", "--quiet"]
    ok = subprocess.run(train + ["--lr", "0.05,0.2", "--gamma", "0.9,0.99", "--out", str(tmp_path / "run")],
                        env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "8 agents (4 settings x 2 seeds)" in ok.stdout and "best: setting" in ok.stdout
    assert len((tmp_path / "run" / "sweep.csv").read_text().splitlines()) == 5
    refused = subprocess.run(train + ["--num-envs", "8,16", "--out", str(tmp_path / "bad")],
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "--num-envs) takes one value" in refused.stderr
    assert not (tmp_path / "bad").exists()
    assert set(SWEEPABLE) == {"learning_rate", "gamma", "entropy_coef", "max_grad_norm"}

"""Whole runs of your own environment, physics, network and metrics (issue 24): library, command line, resume,
evaluation and acting with the saved policy."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from corridor_env import Corridor
from scripts_in_process import load_script, run_script_main

import jax_reinforce as jr

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
QUIET = {"compile_cache": False, "log": lambda line: None}


class Hidden(Corridor):
    """As if typed into a notebook: its class cannot be imported by path."""


Hidden.__module__ = "__main__"


def steps_per_episode(state, traj):
    return {"steps_per_episode": jnp.sum(traj.length) / traj.length.shape[0]}


def cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(TESTS)}  # the suite's compilation cache (tests/conftest.py)
    return subprocess.run([sys.executable, str(ROOT / "scripts" / args[0]), *args[1:]], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def test_an_own_environment_from_the_command_line_trains_evaluates_and_loads(tmp_path):
    out = tmp_path / "corridor"
    run = cli("train.py", "--env", "corridor_env:Corridor", "--env-params", "length=4,step_cost=0.02",
              "--num-seeds", "2", "--num-envs", "16", "--iterations", "60", "--eval-episodes", "4",
              "--out", str(out), "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["env"] == "corridor_env:Corridor" and config["env_params"] == {"length": 4, "step_cost": 0.02}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds_solved"] == 2 and summary["solve_threshold"] == 0.9
    np.testing.assert_allclose(summary["evaluation"]["gymnax_mean"], [1 - 3 * 0.02] * 2, rtol=1e-6)  # the best walk
    assert "gymnasium_mean" not in summary["evaluation"]
    evaluated = cli("evaluate.py", str(out), "--episodes", "2", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "gymnasium has no corridor_env:Corridor: evaluated in gymnax only" in evaluated.stdout.splitlines()
    resumed = cli("train.py", "--resume", "--out", str(out), "--iterations", "61", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    act = jr.load_policy(out, agent=1)
    spec = act.env_spec
    assert spec.params.length == 4  # the run's physics
    obs, _ = spec.env.reset_env(jax.random.PRNGKey(0), spec.params)
    assert int(act(obs)) == 1 and act(jnp.stack([obs, obs])).tolist() == [1, 1]  # walk right
    assert act(obs, jax.random.PRNGKey(0)).dtype == jnp.int32


@pytest.mark.parametrize(("flag", "message"), [
    (["--env-params", "lenght=4"], "train.py: error: env_params (--env-params): lenght is not a field of "
                                   "corridor_env:Corridor's parameters; allowed: max_steps_in_episode, length, step_cost"),
    (["--env-params", "length"], "train.py: error: env_params (--env-params) must be comma-separated key=value "
                                 "pairs, e.g. gravity=20,length=0.8; got 'length'"),
    (["--network", "nowhere:Policy"], "train.py: error: network (--network): network 'nowhere:Policy' cannot be "
                                      "imported"),
])
def test_bad_open_core_flags_are_one_line_and_write_nothing(tmp_path, flag, message, capfd, monkeypatch):
    out = tmp_path / "run"
    run = run_script_main(load_script(ROOT / "scripts" / "train.py"),
                          ["--env", "corridor_env:Corridor", *flag, "--iterations", "1", "--out", out], capfd, monkeypatch)
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines()[-1].startswith(message), run.stderr
    assert not out.exists()


def test_other_physics_of_a_gymnax_environment_are_recorded_and_resumed(tmp_path):
    config = jr.Config(env="Pendulum-v1", env_params={"max_torque": 0.5}, num_seeds=2, num_envs=4, iterations=2)
    result = jr.train_run(config, tmp_path / "p", eval_episodes=2, **QUIET)
    assert result.status == "finished" and "gymnasium_mean" not in result.summary["evaluation"]
    params, loaded = jr.load_checkpoint(tmp_path / "p")
    assert loaded.env_params == {"max_torque": 0.5}
    act = jr.load_policy(tmp_path / "p", 0)
    assert act.env_spec.action_high == (0.5,)
    assert float(jnp.max(jnp.abs(act(jnp.ones((9, 3)) * 100, jax.random.PRNGKey(0))))) <= 0.5  # clipped
    resumed = jr.train_run(config.replace(iterations=3), tmp_path / "p", resume=True, eval_episodes=0, **QUIET)
    assert resumed.status == "finished" and resumed.history["loss"].shape == (2, 3)


def test_an_unimportable_environment_trains_and_needs_its_spec_again(tmp_path):
    spec = jr.make_env(Hidden(), {"length": 3})
    result = jr.train_run(jr.Config(num_seeds=2, num_envs=8, iterations=3, stop_when_solved=False), tmp_path / "h",
                          env_spec=spec, eval_episodes=1, metrics_fn=steps_per_episode, **QUIET)
    assert result.status == "finished" and result.config.env == "Hidden"
    assert json.loads((tmp_path / "h" / "config.json").read_text())["env_importable"] is False
    with pytest.raises(jr.CheckpointError, match=r"the environment 'Hidden' of this run is an object whose class "
                                                 r"cannot be imported by path: pass its spec again"):
        jr.load_checkpoint(tmp_path / "h")
    assert jr.load_checkpoint(tmp_path / "h", env_spec=spec)[1].env == "Hidden"
    with pytest.raises(ValueError, match=r"holds metrics \['steps_per_episode'\] that this run does not make: a "
                                         r"run trained with a metrics_fn is resumed with the same metrics_fn"):
        jr.train_run(jr.Config(iterations=4), tmp_path / "h", resume=True, env_spec=spec, **QUIET)
    again = jr.train_run(jr.Config(iterations=4), tmp_path / "h", resume=True, env_spec=spec,
                         metrics_fn=steps_per_episode, eval_episodes=0, **QUIET)
    assert again.history["steps_per_episode"].shape == (2, 4)
    rows = list(csv.DictReader((tmp_path / "h" / "metrics.csv").open()))
    assert len(rows) == 4 and float(rows[0]["steps_per_episode_median"]) > 0


def test_a_custom_policy_run_records_its_network(tmp_path):
    from example_policies import LINEAR

    result = jr.train_run(jr.Config(num_seeds=2, num_envs=8, iterations=2), tmp_path / "n", policy=LINEAR,
                          eval_episodes=2, **QUIET)
    assert result.status == "finished" and result.config.network == "example_policies:LINEAR"
    assert "gymnasium_mean" not in result.summary["evaluation"]  # gymnasium runs the MLP in NumPy
    act = jr.load_policy(tmp_path / "n", 1)  # found again by its import path
    assert act(jnp.zeros((5, 4))).shape == (5,)
    anonymous = jr.Policy(LINEAR.init, LINEAR.apply)
    jr.train_run(jr.Config(num_seeds=2, num_envs=8, iterations=2), tmp_path / "a", policy=anonymous,
                 eval_episodes=0, **QUIET)
    with pytest.raises(jr.CheckpointError, match=r"is a Policy with no import path: pass it again"):
        jr.load_policy(tmp_path / "a")
    assert jr.load_policy(tmp_path / "a", policy=anonymous)(jnp.zeros(4)).shape == ()


def test_the_value_baseline_reports_its_loss_in_metrics_csv(tmp_path):
    jr.train_run(jr.Config(baseline="value", num_seeds=2, num_envs=8, iterations=2), tmp_path / "v",
                 eval_episodes=0, **QUIET)
    header = (tmp_path / "v" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "value_loss_median"


SPLIT = """
import json, sys
import jax.numpy as jnp
import jax_reinforce as jr
from jax_reinforce.harness.runner import Runner

def whole(state, traj):
    return {"gathered_steps": jnp.sum(traj.length).astype(jnp.float32), "gathered_envs": traj.length.shape[0]}

config = jr.Config(env="corridor_env:Corridor", env_params={"length": 4}, num_seeds=1, num_envs=8, iterations=3,
                   stop_when_solved=False)
runner = Runner(config, None, 3, devices=jr.select_devices(2, 1), metrics_fn=whole)
runner.init()
runner.compile()
runner.run_chunk()
print(json.dumps({"layout": runner.describe(), "env_steps": runner.history["env_steps"].tolist(),
                  "gathered": runner.history["gathered_steps"].tolist(),
                  "envs": runner.history["gathered_envs"].tolist()}))
"""


def test_a_metrics_fn_sees_the_whole_trajectory_when_environments_are_split(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{ROOT}",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "XDG_CACHE_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", SPLIT], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert "2 environment shards" in out["layout"]
    assert out["gathered"] == [[float(s) for s in row] for row in out["env_steps"]]  # every shard's steps
    assert out["envs"] == [[8.0, 8.0, 8.0]]


def test_a_sweep_of_an_own_environment_and_network_equals_its_settings_run_alone(tmp_path):
    from example_policies import LINEAR

    base = jr.Config(env="corridor_env:Corridor", env_params={"length": 4}, num_seeds=2, num_envs=8, iterations=4,
                     stop_when_solved=False)
    sweep = jr.train_sweep(base, {"learning_rate": [0.05, 0.2]}, tmp_path / "sweep", policy=LINEAR,
                           metrics_fn=steps_per_episode, eval_episodes=0, **QUIET)
    assert sweep.params["w"].shape == (2, 2, 2, 2)  # (settings, seeds, obs, actions)
    alone = jr.train_run(base.replace(learning_rate=0.2), tmp_path / "alone", policy=LINEAR,
                         metrics_fn=steps_per_episode, eval_episodes=0, **QUIET)
    np.testing.assert_array_equal(sweep.params["w"][1], alone.state.params["w"])  # bit for bit
    np.testing.assert_array_equal(sweep.run.history["steps_per_episode"][2:], alone.history["steps_per_episode"])

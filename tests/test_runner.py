"""Runner: chunks and compaction of finished agents change no result."""

import jax
import numpy as np

from jax_reinforce import Config, agent_keys, compiler_options, make_env
from jax_reinforce.runner import Runner
from jax_reinforce.training import make_init_state, make_run_iterations


def _one_batch(config):
    # The runner compiles with the trainer's options; so must the reference.
    init = jax.jit(jax.vmap(make_init_state(config)), compiler_options=compiler_options())
    run = jax.jit(jax.vmap(make_run_iterations(config, axis_name="a"), in_axes=(0, None), axis_name="a"),
                  static_argnums=1, compiler_options=compiler_options())
    return jax.device_get(run(init(agent_keys(config.seed, config.num_seeds)), config.iterations))


def _runner(config, chunk, compact=True, max_batch=None):
    runner = Runner(config, make_env(config.env), chunk, compact=compact, max_batch=max_batch)
    runner.init(agent_keys(config.seed, config.num_seeds))
    while runner.running().any():
        runner.run_chunk()
    return runner


def test_runner_with_compaction_equals_one_batch_bitwise_whatever_the_chunk():
    # CartPole-v0 solves fast: most agents stop early, so the runner compacts.
    config = Config(env="CartPole-v0", num_envs=16, num_seeds=32, iterations=80)
    state, metrics = _one_batch(config)
    solved_at = np.asarray(state.solved_at)
    assert (solved_at >= 0).sum() >= 4 and len(set(solved_at.tolist())) > 1, solved_at
    for chunk in (1, 3, 8):
        runner = _runner(config, chunk)
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(runner.state)):
            np.testing.assert_array_equal(a, b)
        width = runner.iterations_run
        np.testing.assert_array_equal(runner.history["env_steps"], np.asarray(metrics["env_steps"])[:, :width])
        np.testing.assert_array_equal(runner.history["loss"], np.asarray(metrics["loss"])[:, :width])
    assert sorted(runner._compiled) != [8], "expected the runner to move the last agents to a smaller batch"


def test_one_agent_runs_as_a_pair_and_equals_itself_among_many():
    config = Config(env="CartPole-v1", num_envs=8, num_seeds=4, iterations=12, stop_when_solved=False)
    many = _runner(config, 4)
    alone = _runner(config.replace(num_seeds=1), 4)
    for a, b in zip(jax.tree.leaves(many.state.params), jax.tree.leaves(alone.state.params)):
        np.testing.assert_array_equal(a[:1], b)
    np.testing.assert_array_equal(many.history["env_steps"][:1], alone.history["env_steps"])


_DEVICES = r'''
import json, sys
import jax, numpy as np
jax.config.update("jax_num_cpu_devices", 4)
from jax_reinforce import Config, agent_keys, make_env
from jax_reinforce.runner import Runner, default_max_batch

config = Config(env="CartPole-v0", num_envs=16, num_seeds=32, iterations=80)

def train(devices, chunk, capped):
    max_batch = default_max_batch(config.num_envs, devices) if capped else None
    runner = Runner(config, make_env(config.env), chunk, devices=devices, max_batch=max_batch)
    runner.init(agent_keys(config.seed, config.num_seeds))
    while runner.running().any():
        runner.run_chunk()
    return runner

def arrays(r):
    return [np.asarray(x) for x in jax.tree.leaves(r.state)] + [r.history[k] for k in sorted(r.history)]

one = train(jax.devices()[:1], 8, capped=False)
runs = {f"{n} devices, chunk {c}, capped {m}": train(jax.devices()[:n], c, m)
        for n, c, m in ((2, 8, False), (4, 3, False), (2, 8, True), (4, 8, True))}
print(json.dumps({
    "sizes": sorted(one._compiled),
    "bitwise": {name: all(np.array_equal(a, b, equal_nan=True) for a, b in zip(arrays(one), arrays(r)))
                for name, r in runs.items()},
    "devices_used": {name: len(r.devices) for name, r in runs.items()},
    "solved": int((np.asarray(one.state.solved_at) >= 0).sum()),
}))
'''


def test_results_are_bitwise_the_same_on_1_2_and_4_devices():
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", _DEVICES], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Every layout (seeds dealt over 2 or 4 devices, calls capped or not, any chunk) trains every
    # agent with the same single-device program: the state and metrics equal one device's bit for bit.
    assert all(result["bitwise"].values()), result
    assert sorted(set(result["devices_used"].values())) == [2, 4], result
    assert result["solved"] >= 4, result
    assert len(result["sizes"]) > 1, result  # finished agents were moved to a smaller batch


def test_capped_batches_of_active_agents_equal_one_batch_bitwise():
    # max_batch packs the agents still training into calls of one fixed size: one program only.
    config = Config(env="CartPole-v0", num_envs=16, num_seeds=7, iterations=40)
    state, metrics = _one_batch(config)
    for max_batch, chunk in ((2, 3), (4, 8)):
        runner = _runner(config, chunk, max_batch=max_batch)
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(runner.state)):
            np.testing.assert_array_equal(a, b)
        width = runner.iterations_run
        np.testing.assert_array_equal(runner.history["env_steps"], np.asarray(metrics["env_steps"])[:, :width])
        assert sorted(runner._compiled) == [max_batch], runner._compiled

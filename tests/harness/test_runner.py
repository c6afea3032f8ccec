"""Runner: chunks, compaction of finished agents, capped calls and devices change no result.

Compiling the runner's chunk programs is nearly all of these tests' time, and
they need many of the same ones (the chunk program of a size and chunk
length on a device does not depend on the layout that asks for it). So every
run is made in one fresh process with 4 CPU devices (``_RUNS``), sharing a
JAX persistent compilation cache in a temporary directory: a program another
run of this module already compiled is read back, not compiled again. Each
run's state and metrics come back as ``.npz`` files, compared here.
"""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

# CartPole-v0 solves fast: most agents stop early, at different iterations, so the runner compacts
# (moves the last one or two agents still training into a batch of 2).
CONFIG = dict(env="CartPole-v0", num_envs=16, num_seeds=16, iterations=80)
CHUNKS = (1, 3, 8)  # one device, compaction on: each must equal the one-batch run
LAYOUTS = {  # name: (devices, chunk, capped by default_max_batch, threads); each must equal one device, chunk 8
    "2 devices, chunk 8, capped False": (2, 8, False, 1),
    "4 devices, chunk 3, capped False": (4, 3, False, 1),
    "2 devices, chunk 8, capped True": (2, 8, True, 1),  # capped: calls of the uncapped full size here,
    "4 devices, chunk 3, capped True": (4, 3, True, 1),  # so these two reuse the programs of the two above
    # Calls from several threads at once on one device (the CPU's default layout), and on two devices.
    "1 device, 2 threads, chunk 8, capped True": (1, 8, True, 2),
    "1 device, 3 threads, chunk 3, capped False": (1, 3, False, 3),
    "2 devices, 2 threads, chunk 3, capped False": (2, 3, False, 2),  # the programs of "4 devices, chunk 3" on two
}
CAPPED = ((2, 8), (4, 3))  # (max_batch, chunk), for the first CAPPED_SEEDS seeds
CAPPED_SEEDS = 7  # not a multiple of either max_batch: calls hold padding copies

_RUNS = r'''
import json, sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_num_cpu_devices", 4)
out = Path(sys.argv[1])
# The programs the runs share are compiled once (the first run to need each), then read back.
jax.config.update("jax_compilation_cache_dir", str(out / "xla-cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
from jax_reinforce.harness.compilation import enable_program_cache

enable_program_cache(out / "programs")  # and traced once: a later runner of the same program loads its export

from jax_reinforce import Config, agent_keys, compiler_options, make_env
from jax_reinforce.harness.checkpoint import flatten_tree
from jax_reinforce.harness.runner import Runner, default_max_batch
from jax_reinforce.core.training import make_init_state, make_run_iterations

settings = json.loads(sys.argv[2])
config = Config(**settings["config"])
info = {}


def save(name, state, history, **extra):
    metrics = {f"metrics/{k}": np.asarray(v) for k, v in history.items()}
    np.savez(out / f"{name}.npz", **flatten_tree(state, "state"), **metrics)
    info[name] = extra


def one_batch(config):
    # The runner compiles with the trainer's options; so must the reference.
    init = jax.jit(jax.vmap(make_init_state(config)), compiler_options=compiler_options())
    run = jax.jit(jax.vmap(make_run_iterations(config, axis_name="a"), in_axes=(0, None), axis_name="a"),
                  static_argnums=1, compiler_options=compiler_options())
    return jax.device_get(run(init(agent_keys(config.seed, config.num_seeds)), config.iterations))


def train(name, config, chunk, devices=None, max_batch=None, threads=1):
    runner = Runner(config, make_env(config.env), chunk, devices=devices, max_batch=max_batch, threads=threads)
    runner.init(agent_keys(config.seed, config.num_seeds))
    while runner.running().any():
        runner.run_chunk()
    save(name, runner.state, runner.history, sizes=sorted(runner._compiled), devices=len(runner.devices),
         threads=runner.threads, iterations_run=runner.iterations_run)


save("one batch", *one_batch(config))
for chunk in settings["chunks"]:
    train(f"one device, chunk {chunk}", config, chunk)
for name, (n, chunk, capped, threads) in settings["layouts"].items():
    devices = jax.devices()[:n]
    train(name, config, chunk, devices, default_max_batch(config.num_envs, devices, threads) if capped else None,
          threads)
for max_batch, chunk in settings["capped"]:
    train(f"max_batch {max_batch}, chunk {chunk}", config.replace(num_seeds=settings["capped_seeds"]), chunk,
          max_batch=max_batch)
train("alone", config.replace(num_seeds=1), 8)
print(json.dumps(info))
'''


class _Runs(SimpleNamespace):
    def arrays(self, name):
        with np.load(self.dir / f"{name}.npz") as f:
            return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of this module, trained in one process of 4 CPU devices: ``arrays(name)``, ``info[name]``."""
    out = tmp_path_factory.mktemp("runner")
    settings = {"config": CONFIG, "chunks": CHUNKS, "layouts": LAYOUTS, "capped": CAPPED, "capped_seeds": CAPPED_SEEDS}
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", _RUNS, str(out), json.dumps(settings)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _Runs(dir=out, info=json.loads(proc.stdout.strip().splitlines()[-1]))


def _state(arrays):
    return {k: v for k, v in arrays.items() if k.startswith("state/")}


def test_runner_with_compaction_equals_one_batch_bitwise_whatever_the_chunk(runs):
    reference = runs.arrays("one batch")
    solved_at = reference["state/solved_at"]
    assert (solved_at >= 0).sum() >= 4 and len(set(solved_at.tolist())) > 1, solved_at
    for chunk in CHUNKS:
        run = runs.arrays(f"one device, chunk {chunk}")
        assert sorted(_state(run)) == sorted(_state(reference))
        for name in _state(reference):
            np.testing.assert_array_equal(reference[name], run[name], err_msg=f"chunk {chunk}: {name}")
        width = runs.info[f"one device, chunk {chunk}"]["iterations_run"]
        for name in ("env_steps", "loss"):
            np.testing.assert_array_equal(run[f"metrics/{name}"], reference[f"metrics/{name}"][:, :width])
        sizes = runs.info[f"one device, chunk {chunk}"]["sizes"]
        assert len(sizes) > 1, f"expected the runner to move the last agents to a smaller batch: {sizes}"


def test_one_agent_runs_as_a_pair_and_equals_itself_among_many(runs):
    many, alone = runs.arrays("one device, chunk 8"), runs.arrays("alone")
    assert runs.info["alone"]["sizes"] == [2]  # a lone agent runs as a pair of copies
    assert sorted(alone) == sorted(many)
    for name in alone:
        assert alone[name].shape[0] == 1, name
        np.testing.assert_array_equal(many[name][:1, :alone[name].shape[1]] if name.startswith("metrics/")
                                      else many[name][:1], alone[name], err_msg=name)


def test_results_are_bitwise_the_same_on_1_2_and_4_devices_and_any_threads(runs):
    # Every layout (seeds dealt over 2 or 4 devices, calls from 1 to 3 threads at once on a device,
    # capped or not, any chunk) trains every agent with the same single-device program: the state and
    # metrics equal one device's, one thread's, bit for bit.
    one = runs.arrays("one device, chunk 8")
    bitwise = {}
    for name in LAYOUTS:
        run = runs.arrays(name)
        bitwise[name] = sorted(run) == sorted(one) and all(np.array_equal(one[k], run[k], equal_nan=True) for k in one)
    assert all(bitwise.values()), bitwise
    assert sorted({runs.info[name]["devices"] for name in LAYOUTS}) == [1, 2, 4], runs.info
    assert sorted({runs.info[name]["threads"] for name in LAYOUTS}) == [1, 2, 3], runs.info
    # Several calls ran in each chunk of the threaded layouts (more agents than one call holds).
    assert all(max(runs.info[name]["sizes"]) < CONFIG["num_seeds"] for name in LAYOUTS), runs.info
    assert int((one["state/solved_at"] >= 0).sum()) >= 4
    assert len(runs.info["one device, chunk 8"]["sizes"]) > 1, runs.info  # finished agents were moved to a smaller batch


def test_capped_batches_of_active_agents_equal_one_batch_bitwise(runs):
    # max_batch packs the agents still training into calls of one fixed size: one program only.
    # Agent i's key and arithmetic do not depend on the agents beside it: the reference is the
    # one-batch run's first CAPPED_SEEDS agents.
    reference = {k: v[:CAPPED_SEEDS] for k, v in runs.arrays("one batch").items()}
    for max_batch, chunk in CAPPED:
        name = f"max_batch {max_batch}, chunk {chunk}"
        run = runs.arrays(name)
        assert sorted(_state(run)) == sorted(_state(reference))
        for leaf in _state(reference):
            np.testing.assert_array_equal(reference[leaf], run[leaf], err_msg=f"{name}: {leaf}")
        width = runs.info[name]["iterations_run"]
        np.testing.assert_array_equal(run["metrics/env_steps"], reference["metrics/env_steps"][:, :width])
        assert runs.info[name]["sizes"] == [max_batch], runs.info[name]


def _fake_devices(platform, count):
    return [SimpleNamespace(platform=platform, process_index=0, id=i) for i in range(count)]


def test_default_threads_share_the_cores_between_cpu_devices(monkeypatch):
    from jax_reinforce.harness import runner
    from jax_reinforce.harness.devices import MIN_BATCH
    from jax_reinforce.harness.runner import CPU_ENVS_PER_DEVICE, default_max_batch, default_threads

    monkeypatch.setattr(runner, "available_cores", lambda: 4)
    assert [default_threads(_fake_devices("cpu", n)) for n in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    assert default_threads(_fake_devices("gpu", 2)) == 1  # an accelerator runs one call at a time
    # The cap holds one call's worth of environments for every call that runs at once.
    per_call = max(MIN_BATCH, CPU_ENVS_PER_DEVICE // 32)
    assert default_max_batch(32, _fake_devices("cpu", 1)) == 4 * per_call
    assert default_max_batch(32, _fake_devices("cpu", 2)) == 2 * 2 * per_call
    assert default_max_batch(32, _fake_devices("cpu", 1), threads=3) == 3 * per_call
    assert default_max_batch(32, _fake_devices("gpu", 2)) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_runner_refuses_a_bad_thread_count(bad):
    from jax_reinforce import Config
    from jax_reinforce.harness.runner import Runner

    with pytest.raises(ValueError, match=r"threads must be None or an integer >= 1; got"):
        Runner(Config(num_seeds=2, num_envs=4, iterations=1), None, 1, threads=bad)


def test_the_cpu_default_is_one_device_and_elsewhere_as_many_as_the_seeds_fill(monkeypatch):
    from jax_reinforce.harness import devices as distributed

    for platform, expected in (("cpu", 1), ("gpu", 4)):
        devices = _fake_devices(platform, 4)
        monkeypatch.setattr(distributed, "_devices_by_process", lambda devices=devices: {0: devices})
        assert distributed.select_devices(None, num_seeds=16) == devices[:expected]
        assert distributed.select_devices("all", num_seeds=16) == devices
        assert distributed.select_devices(None, num_seeds=3) == devices[:1]  # 3 seeds fill one pair


def test_describe_names_the_devices_and_the_calls_at_once():
    import jax

    from jax_reinforce import Config
    from jax_reinforce.harness.runner import Runner

    config = Config(num_seeds=4, num_envs=4, iterations=1)
    two = Runner(config, None, 1, devices=jax.devices("cpu")[:1], threads=2).describe()
    assert two == "1 cpu device in 1 process, 2 calls at once, one thread each: the seeds dealt over them", two
    one = Runner(config, None, 1, devices=jax.devices("cpu")[:1], threads=1).describe()
    assert one == "1 cpu device in 1 process: the seeds dealt over them", one
